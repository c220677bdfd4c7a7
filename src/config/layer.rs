//! The sources of configuration, each a figment provider: built-in defaults, the three files,
//! `KSYNC_*` environment variables and command-line flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use figment::value::{Dict, Map, Value as FValue};
use figment::{Metadata, Profile, Provider, Source};

use super::document::{self, Format};
use super::schema::{self, FieldPath, LayerData};
use crate::diagnostic::{Problems, SourceFile, Span};

/// Which source a layer is; the order of the variants is the precedence, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Built-in defaults.
    Defaults,
    /// `~/.ksync/ksync.yaml`.
    User,
    /// `ksync.toml`.
    Project,
    /// `ksync.local.toml`.
    Local,
    /// `KSYNC_*` environment variables.
    Env,
    /// Command-line flags.
    Flags,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Defaults => "built-in default",
            Role::User => "user file",
            Role::Project => "project file",
            Role::Local => "local override file",
            Role::Env => "environment",
            Role::Flags => "command line",
        })
    }
}

/// Default values, the lowest layer.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Port of the local daemon's API (the original tool's `port`).
pub const DEFAULT_PORT: u16 = 40322;

/// The environment variables read as configuration, and the key each sets.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("KSYNC_CONTEXT", "context"),
    ("KSYNC_NAMESPACE", "namespace"),
    ("KSYNC_LOG_LEVEL", "log-level"),
    ("KSYNC_PORT", "port"),
    ("KSYNC_SYNCTHING", "syncthing"),
];

/// One source of configuration.
#[derive(Debug)]
pub(super) struct Layer {
    /// Which source.
    pub role: Role,
    /// The file, for file layers.
    pub file: Option<SourceFile>,
    /// Its checked, normalised values.
    pub data: LayerData,
}

impl Layer {
    /// Reads and checks a configuration file; problems go to `problems`.
    pub(super) fn from_file(role: Role, file: SourceFile, problems: &mut Problems) -> Layer {
        let format = if role == Role::User {
            Format::Yaml
        } else {
            Format::Toml
        };
        let data = match document::parse(&file, format) {
            Ok(root) => schema::walk(&file, format, &root, problems),
            Err(problem) => {
                problems.push(problem);
                LayerData::default()
            }
        };
        Layer {
            role,
            file: Some(file),
            data,
        }
    }

    /// Built-in defaults.
    pub(super) fn defaults() -> Layer {
        let mut dict = Dict::new();
        dict.insert("log-level".into(), FValue::from(DEFAULT_LOG_LEVEL));
        dict.insert("port".into(), FValue::from(i64::from(DEFAULT_PORT)));
        Layer::from_dict(Role::Defaults, dict)
    }

    /// A layer of values given in code (flags).
    pub(super) fn from_dict(role: Role, dict: Dict) -> Layer {
        Layer {
            role,
            file: None,
            data: LayerData {
                dict,
                ..LayerData::default()
            },
        }
    }

    /// A layer from the `KSYNC_*` variables in `env` (see [`ENV_KEYS`]). Values are kept as
    /// strings, except `KSYNC_PORT`, which must be a port number.
    pub(super) fn from_env(env: &BTreeMap<String, String>, problems: &mut Problems) -> Layer {
        let mut dict = Dict::new();
        for (var, key) in ENV_KEYS {
            let Some(value) = env.get(*var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let converted = if *key == "port" {
                match value.parse::<u16>() {
                    Ok(port) if port > 0 => FValue::from(i64::from(port)),
                    _ => {
                        problems.push(
                            crate::diagnostic::Problem::error(
                                "config::wrong_type",
                                format!("{var} must be a port number (1-65535), found `{value}`"),
                            )
                            .with_help(format!("unset {var} or give it a number")),
                        );
                        continue;
                    }
                }
            } else {
                FValue::from(value.clone())
            };
            dict.insert((*key).into(), converted);
        }
        Layer::from_dict(Role::Env, dict)
    }

    /// How the layer is named in output: the file path for files, else the role.
    pub(super) fn label(&self) -> String {
        match &self.file {
            Some(file) => file.display.clone(),
            None => self.role.to_string(),
        }
    }

    /// How the source of one key is named: the file, or e.g. `environment (KSYNC_CONTEXT)`.
    pub(super) fn label_for(&self, key: &str) -> String {
        match self.role {
            Role::Env => ENV_KEYS
                .iter()
                .find(|(_, k)| *k == key)
                .map_or_else(|| self.label(), |(var, _)| format!("environment ({var})")),
            Role::Flags => match key {
                "namespace" => "command line (--namespace)".into(),
                "log-level" => "command line (--log-level)".into(),
                "vars" => "command line (--var)".into(),
                other => format!("command line (--{other})"),
            },
            _ => self.label(),
        }
    }

    /// Where `path` was written in this layer's file.
    pub(super) fn position(&self, path: &FieldPath) -> Option<(&SourceFile, Span)> {
        let file = self.file.as_ref()?;
        let span = self.data.positions.get(path)?;
        Some((file, *span))
    }

    /// The directory relative paths in this layer resolve against.
    pub(super) fn base_dir<'a>(&'a self, cwd: &'a Path) -> &'a Path {
        self.file
            .as_ref()
            .and_then(|f| f.path.parent())
            .unwrap_or(cwd)
    }

    /// The figment metadata name, unique per layer.
    fn metadata_name(&self) -> String {
        format!("{:?}: {}", self.role, self.label())
    }

    /// True when `metadata` is this layer's.
    pub(super) fn owns(&self, metadata: &Metadata) -> bool {
        metadata.name == self.metadata_name()
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.metadata_name());
        match &self.file {
            Some(file) => metadata.source(Source::File(file.path.clone())),
            None => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.dict.clone()))
    }
}
