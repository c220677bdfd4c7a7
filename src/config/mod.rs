//! Loading ksync's configuration: files, environment and flags merged with figment, templates
//! rendered, everything validated.
//!
//! # Precedence
//!
//! This is the one place the order is defined. Lowest first; a later source overrides an
//! earlier one key by key:
//!
//! 1. built-in defaults (`log-level = "info"`, `port = 40322`, no namespace: the kube
//!    context's namespace applies);
//! 2. the user file `~/.ksync/ksync.yaml` (`KSYNC_HOME` moves `~/.ksync`); it reads the
//!    original ksync's file unchanged;
//! 3. the project file `ksync.toml`, found in the working directory or the nearest parent;
//! 4. `ksync.local.toml` beside it: untracked personal overrides;
//! 5. environment variables `KSYNC_CONTEXT`, `KSYNC_NAMESPACE`, `KSYNC_LOG_LEVEL`,
//!    `KSYNC_PORT`, `KSYNC_SYNCTHING`;
//! 6. command-line flags (`--context`, `--namespace`, `--log-level`, `--var key=value`).
//!
//! Specs merge by name: a spec named `web` in `ksync.local.toml` changes only the keys it sets
//! of the `web` from `ksync.toml`. An empty string unsets a key (`pod = ""`). A spec's
//! `namespace` falls back to the merged top-level `namespace`, then to the kube context's.
//! Relative `localpath`s resolve against the directory of the file that sets them.

mod document;
mod layer;
mod paths;
mod schema;
mod specs;
mod user_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::value::{Dict, Value as FValue};

pub use layer::{DEFAULT_LOG_LEVEL, DEFAULT_PORT, ENV_KEYS, Role};
pub use paths::{
    KsyncHome, LOCAL_FILE, PROJECT_FILE, USER_FILE, absolutize, find_project_file, tilde,
};
pub(crate) use schema::did_you_mean;
pub use user_file::{NewSpec, UserFile, UserFileError};

use crate::diagnostic::{InvalidConfig, Problem, Problems, SourceFile};
use crate::spec::SpecList;
use crate::template::{ContextInputs, Renderer};
use layer::Layer;
use specs::Merged;

/// What `load` reads, and the overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Working directory: where the project file is searched from and what relative paths
    /// from the environment and flags resolve against.
    pub cwd: PathBuf,
    /// An explicit project file (`--file`) instead of searching.
    pub project_file: Option<PathBuf>,
    /// The ksync home; `None` skips the user file.
    pub home: Option<KsyncHome>,
    /// Process environment (`KSYNC_*` settings and the templates' `env`).
    pub env: BTreeMap<String, String>,
    /// Command-line flags, the highest layer.
    pub flags: Flags,
}

/// Settings given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--context`.
    pub context: Option<String>,
    /// `--namespace`: the default namespace of specs that set none.
    pub namespace: Option<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--var key=value`, in order.
    pub vars: Vec<(String, String)>,
}

/// A setting and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// The file, `environment (KSYNC_…)`, `command line (--…)` or `built-in default`.
    pub source: String,
}

/// Top-level settings after merging.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// Kube context; `None` means the kubeconfig's current context.
    pub context: Option<Sourced<String>>,
    /// Default namespace of specs; `None` means the context's namespace.
    pub namespace: Option<Sourced<String>>,
    /// Log level: error, warn, info, debug or trace.
    pub log_level: Sourced<String>,
    /// Port of the local daemon's API.
    pub port: Sourced<u16>,
    /// The Syncthing binary to run (`KSYNC_SYNCTHING` overrides it; default: `PATH`).
    pub syncthing: Option<Sourced<String>>,
    /// How `ksync init` installs the agent (`[agent]`).
    pub agent: crate::agent::AgentConfig,
}

/// A configuration file that was read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadedFile {
    /// Its role in the precedence.
    pub role: Role,
    /// Absolute path.
    pub path: PathBuf,
}

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Top-level settings.
    pub settings: Settings,
    /// The validated specs.
    pub specs: SpecList,
    /// Things worth knowing that do not stop ksync (missing local folders, ignored legacy
    /// keys).
    pub warnings: Vec<Problem>,
    /// The files that were read, lowest precedence first.
    pub files: Vec<LoadedFile>,
    /// The project directory (holding `ksync.toml`), or the working directory.
    pub project_dir: PathBuf,
    /// Renders per-container template fields.
    pub renderer: Renderer,
}

/// Loading failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The configuration has problems; each names its file, line and fix.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] InvalidConfig),
    /// A file exists but could not be read.
    #[error("failed to read {}", path.display())]
    #[diagnostic(
        code(ksync::config::read),
        help("check the file's permissions; ksync only reads it")
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--file` names a file that does not exist.
    #[error("project file {} does not exist", path.display())]
    #[diagnostic(
        code(ksync::config::no_project_file),
        help("check the path given to --file, or leave --file out to search for ksync.toml")
    )]
    MissingProjectFile {
        /// The path given.
        path: PathBuf,
    },
}

/// Reads, merges, renders and validates the configuration. See the module docs for the order.
pub fn load(opts: &LoadOptions) -> Result<LoadedConfig, ConfigError> {
    let mut problems = Problems::new();
    let Sources {
        layers,
        files,
        project_dir,
    } = read_sources(opts, &mut problems)?;

    let figment = layers
        .iter()
        .fold(Figment::new(), |figment, layer| figment.merge(layer));
    let merged = Merged {
        figment: &figment,
        layers: &layers,
        cwd: &opts.cwd,
    };

    let renderer = Renderer::new(ContextInputs {
        vars: specs::merged_vars(&figment),
        project_dir: project_dir.clone(),
        env: opts.env.clone(),
    });
    let settings = settings(&merged, &renderer, &mut problems);
    let default_namespace = settings.namespace.as_ref().map(|n| n.value.clone());
    let specs = merged.specs(&renderer, default_namespace.as_deref(), &mut problems);
    let warnings = problems.into_result()?;
    Ok(LoadedConfig {
        settings,
        specs: SpecList::new(specs),
        warnings,
        files,
        project_dir,
        renderer,
    })
}

/// A spec name and the file that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The spec's name as written (before templating).
    pub name: String,
    /// The role of the file.
    pub role: Role,
    /// The file.
    pub path: PathBuf,
}

/// The spec names each configuration file declares, read leniently (problems in the files
/// are ignored). For commands that edit the user file and must not clash with other files.
pub fn declared_specs(opts: &LoadOptions) -> Result<Vec<Declared>, ConfigError> {
    let sources = read_sources(opts, &mut Problems::new())?;
    Ok(sources
        .layers
        .iter()
        .filter_map(|layer| Some((layer, layer.file.as_ref()?)))
        .flat_map(|(layer, file)| {
            layer.data.spec_order.iter().map(|name| Declared {
                name: name.clone(),
                role: layer.role,
                path: file.path.clone(),
            })
        })
        .collect())
}

struct Sources {
    layers: Vec<Layer>,
    files: Vec<LoadedFile>,
    project_dir: PathBuf,
}

/// Every layer, lowest precedence first.
fn read_sources(opts: &LoadOptions, problems: &mut Problems) -> Result<Sources, ConfigError> {
    let mut layers = vec![Layer::defaults()];
    let mut files = Vec::new();

    if let Some(home) = &opts.home {
        let path = home.user_file();
        if let Some(text) = read_optional(&path)? {
            let file = SourceFile::new(&path, text, &opts.cwd);
            layers.push(Layer::from_file(Role::User, file, problems));
            files.push(LoadedFile {
                role: Role::User,
                path,
            });
        }
    }

    let project_file = match &opts.project_file {
        Some(path) => {
            let path = absolutize(&opts.cwd, path);
            if !path.is_file() {
                return Err(ConfigError::MissingProjectFile { path });
            }
            Some(path)
        }
        None => find_project_file(&opts.cwd),
    };
    let project_dir = project_file
        .as_ref()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| opts.cwd.clone());
    if let Some(path) = &project_file {
        let local = project_dir.join(LOCAL_FILE);
        for (role, path) in [(Role::Project, path.clone()), (Role::Local, local)] {
            if let Some(text) = read_optional(&path)? {
                let file = SourceFile::new(&path, text, &opts.cwd);
                layers.push(Layer::from_file(role, file, problems));
                files.push(LoadedFile { role, path });
            }
        }
    }

    layers.push(Layer::from_env(&opts.env, problems));
    layers.push(Layer::from_dict(Role::Flags, flags_dict(&opts.flags)));
    Ok(Sources {
        layers,
        files,
        project_dir,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn flags_dict(flags: &Flags) -> Dict {
    let mut dict = Dict::new();
    for (key, value) in [
        ("context", &flags.context),
        ("namespace", &flags.namespace),
        ("log-level", &flags.log_level),
    ] {
        if let Some(value) = value {
            dict.insert(key.into(), FValue::from(value.clone()));
        }
    }
    if !flags.vars.is_empty() {
        let vars: Dict = flags
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), FValue::from(v.clone())))
            .collect();
        dict.insert("vars".into(), FValue::from(vars));
    }
    dict
}

/// Log levels accepted, and the original tool's (logrus) names mapped onto them.
const LOG_LEVELS: &[(&str, &str)] = &[
    ("error", "error"),
    ("warn", "warn"),
    ("info", "info"),
    ("debug", "debug"),
    ("trace", "trace"),
    ("warning", "warn"),
    ("fatal", "error"),
    ("panic", "error"),
];

fn settings(merged: &Merged<'_>, renderer: &Renderer, problems: &mut Problems) -> Settings {
    let mut sourced_str = |key: &str| -> Option<Sourced<String>> {
        let value = merged.figment.find_value(key).ok()?;
        let raw = value.as_str()?;
        let text = match renderer.render(key, raw) {
            Ok(text) => text.trim().to_string(),
            Err(e) => {
                let problem = Problem::error("config::template", format!("`{key}`: {e}"))
                    .with_help(e.help().unwrap_or("fix the template"));
                problems.push(top_problem(merged, key, problem));
                return None;
            }
        };
        if text.is_empty() {
            return None;
        }
        let source = merged
            .layer_of(&value)
            .map_or_else(|| "unknown".to_string(), |l| l.label_for(key));
        Some(Sourced {
            value: text,
            source,
        })
    };
    let context = sourced_str("context");
    let namespace = sourced_str("namespace");
    let log_level = sourced_str("log-level");
    let syncthing = sourced_str("syncthing");
    if let Some(ns) = &namespace
        && let Err(reason) = crate::names::check_dns1123_label(&ns.value)
    {
        problems.push(top_problem(
            merged,
            "namespace",
            Problem::error(
                "config::invalid_namespace",
                format!(
                    "namespace `{}` (from {}) is not valid: {reason}",
                    ns.value, ns.source
                ),
            )
            .with_help("namespaces are DNS-1123 labels such as `dev`"),
        ));
    }
    let mut log_level = log_level.unwrap_or(Sourced {
        value: DEFAULT_LOG_LEVEL.into(),
        source: Role::Defaults.to_string(),
    });
    match LOG_LEVELS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&log_level.value))
    {
        Some((_, level)) => log_level.value = (*level).to_string(),
        None => problems.push(top_problem(
            merged,
            "log-level",
            Problem::error(
                "config::invalid_log_level",
                format!(
                    "log level `{}` (from {}) is not known",
                    log_level.value, log_level.source
                ),
            )
            .with_help("use one of error, warn, info, debug, trace"),
        )),
    }
    let port = merged
        .figment
        .find_value("port")
        .ok()
        .and_then(|v| {
            let port = v.to_i128().and_then(|p| u16::try_from(p).ok())?;
            let source = merged
                .layer_of(&v)
                .map_or_else(String::new, |l| l.label_for("port"));
            Some(Sourced {
                value: port,
                source,
            })
        })
        .unwrap_or(Sourced {
            value: DEFAULT_PORT,
            source: Role::Defaults.to_string(),
        });
    let agent = match merged.figment.find_value("agent") {
        Ok(value) => value.deserialize().unwrap_or_else(|e| {
            problems.push(top_problem(
                merged,
                "agent",
                Problem::error(
                    "config::wrong_type",
                    format!("the `[agent]` settings are not valid: {e}"),
                )
                .with_help("see README.md for the agent settings"),
            ));
            crate::agent::AgentConfig::default()
        }),
        Err(_) => crate::agent::AgentConfig::default(),
    };
    Settings {
        context,
        namespace,
        log_level,
        port,
        syncthing,
        agent,
    }
}

fn top_problem(merged: &Merged<'_>, key: &str, problem: Problem) -> Problem {
    let located = merged
        .figment
        .find_value(key)
        .ok()
        .and_then(|v| merged.layer_of(&v))
        .and_then(|l| l.position(&schema::FieldPath::Top(key.to_string())));
    match located {
        Some((file, span)) => problem.at(file, span, "here"),
        None => problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precedence through figment's own test jail: files in a temporary directory and
    /// process environment variables, read the way the binary reads them.
    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "the closure's error type is figment's"
    )]
    fn precedence_in_a_figment_jail() {
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().to_path_buf();
            std::fs::create_dir_all(dir.join("home/.ksync")).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
            jail.create_file(
                "home/.ksync/ksync.yaml",
                "namespace: user\nlog-level: debug\ncontext: user-ctx\nport: 1000\n",
            )?;
            jail.create_file(
                "ksync.toml",
                "namespace = \"project\"\ncontext = \"project-ctx\"\n[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n",
            )?;
            jail.create_file("ksync.local.toml", "namespace = \"local\"\n")?;
            jail.set_env("KSYNC_CONTEXT", "env-ctx");
            jail.set_env("KSYNC_PORT", "2000");
            let opts = LoadOptions {
                cwd: dir.clone(),
                project_file: None,
                home: Some(KsyncHome::at(dir.join("home/.ksync"))),
                env: crate::template::process_env(),
                flags: Flags {
                    log_level: Some("warn".into()),
                    ..Flags::default()
                },
            };
            let loaded = load(&opts).map_err(|e| e.to_string())?;
            let s = &loaded.settings;
            assert_eq!(
                s.namespace.as_ref().map(|n| n.value.as_str()),
                Some("local")
            );
            assert_eq!(
                s.context.as_ref().map(|c| c.source.as_str()),
                Some("environment (KSYNC_CONTEXT)")
            );
            assert_eq!(s.port.value, 2000);
            assert_eq!(s.log_level.value, "warn");
            assert_eq!(s.log_level.source, "command line (--log-level)");
            let web = loaded.specs.get("web").ok_or("no spec web")?;
            assert_eq!(web.namespace.as_deref(), Some("local"));
            assert_eq!(web.local_path, dir.join("src"));
            Ok(())
        });
    }
}
