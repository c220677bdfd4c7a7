//! `ksync create`: add a spec to the user file `~/.ksync/ksync.yaml`.
//!
//! Works without a running daemon. Only the new spec entry is written: global flags such as
//! `--context` never end up in the file.

use std::path::PathBuf;

use clap::Args;

use super::{Context, print};
use crate::config::{NewSpec, Role, UserFile, absolutize, declared_specs, tilde};
use crate::diagnostic::Problem;
use crate::error::Error;
use crate::selector::LabelSelector;
use crate::spec;
use crate::template::slug;

/// Arguments of `ksync create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the spec (default: made from the local folder and the target).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Sync exactly this pod.
    #[arg(
        short,
        long,
        value_name = "POD",
        conflicts_with = "selector",
        required_unless_present = "selector"
    )]
    pod: Option<String>,

    /// Sync every pod matching this label selector (repeatable; joined with commas).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    selector: Vec<String>,

    /// Container to sync into (default: the pod's first container).
    #[arg(short, long, value_name = "CONTAINER")]
    container: Option<String>,

    /// Namespace of the pods (default: the configured namespace, else the context's).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Reload the container each time a local change has landed.
    #[arg(long, overrides_with = "no_reload")]
    reload: bool,

    /// Do not reload the container (the default).
    #[arg(long, overrides_with = "reload")]
    no_reload: bool,

    /// Never change the local folder: sync local changes to the container only.
    #[arg(long, conflicts_with = "remote_read_only")]
    local_read_only: bool,

    /// Never change the container: sync container changes to the local folder only.
    #[arg(long)]
    remote_read_only: bool,

    /// Replace a spec of the same name, or add one identical to an existing spec.
    #[arg(long)]
    force: bool,

    /// Local folder to sync (relative to the working directory).
    #[arg(value_name = "LOCAL")]
    local: PathBuf,

    /// Absolute path inside the container.
    #[arg(value_name = "REMOTE")]
    remote: String,
}

pub(super) fn run(ctx: &Context, args: CreateArgs) -> Result<(), Error> {
    let user_path = ctx.home()?.user_file();
    let (mut spec, warning) = candidate(ctx, &args)?;

    let user = UserFile::open(&user_path)?;
    let declared = declared_specs(&ctx.load_options(None))?;
    let elsewhere = |name: &str| {
        declared
            .iter()
            .find(|d| d.name == name && d.role != Role::User)
    };
    spec.name = match &args.name {
        Some(name) => {
            spec::check_name(name).map_err(refused)?;
            name.clone()
        }
        None => {
            let taken: Vec<String> = declared.iter().map(|d| d.name.clone()).collect();
            generate_name(&spec, &taken)
        }
    };

    if let Some(other) = elsewhere(&spec.name) {
        return Err(Error::DuplicateName {
            name: spec.name.clone(),
            file: crate::diagnostic::display_path(&other.path, &ctx.cwd),
            help: "that file takes precedence over ~/.ksync/ksync.yaml; choose another --name"
                .into(),
        });
    }
    let replacing = user.names().contains(&spec.name);
    if replacing && !args.force {
        return Err(Error::DuplicateName {
            name: spec.name.clone(),
            file: tilde(user.path()),
            help: "pass --force to replace it, or choose another --name".into(),
        });
    }
    if !args.force
        && let Some(existing) = user.same_as(&spec)
    {
        return Err(Error::SameSpec {
            existing: existing.to_string(),
            name: spec.name.clone(),
        });
    }

    user.write(&user.with_spec(&spec))?;
    super::warn_all(&warning);
    let target = if spec.pod.is_empty() {
        format!("pods matching {}", spec.selector)
    } else {
        format!("pod {}", spec.pod)
    };
    print(&format!(
        "{} spec `{}` in {}: {} → {}:{}\n",
        if replacing { "Replaced" } else { "Added" },
        spec.name,
        tilde(user.path()),
        tilde(std::path::Path::new(&spec.localpath)),
        target,
        spec.remotepath,
    ));
    Ok(())
}

/// The spec the arguments describe, checked by the same rules as the config files, and a
/// warning when the local folder does not exist yet.
fn candidate(ctx: &Context, args: &CreateArgs) -> Result<(NewSpec, Option<Problem>), Error> {
    let selector = if args.selector.is_empty() {
        String::new()
    } else {
        spec::parse_selector(&args.selector.join(","))
            .map_err(refused)?
            .to_string()
    };
    let pod = args.pod.clone().unwrap_or_default();
    let container = args.container.clone().unwrap_or_default();
    let namespace = args.namespace.clone().unwrap_or_default();
    let checks = [
        (
            &pod,
            spec::check_pod as fn(&str) -> Result<(), spec::Refusal>,
        ),
        (&container, spec::check_container),
        (&namespace, spec::check_namespace),
    ];
    for (value, check) in checks {
        if !value.is_empty() {
            check(value).map_err(refused)?;
        }
    }
    let remote =
        spec::check_remote_path(&args.remote, &format!("`{}`", args.remote)).map_err(refused)?;
    let local = absolutize(&ctx.cwd, &args.local);
    let mut warning = None;
    match std::fs::metadata(&local) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::InvalidSpec {
                message: format!("local path {} is a file, not a folder", local.display()),
                help: "ksync syncs folders; give the folder that holds the file".into(),
            });
        }
        Ok(_) => {}
        Err(_) => {
            warning = Some(
                Problem::warning(
                    "create::local_missing",
                    format!(
                        "local folder {} does not exist yet",
                        crate::diagnostic::display_path(&local, &ctx.cwd)
                    ),
                )
                .with_help("the spec is saved; create the folder before starting a sync"),
            );
        }
    }
    let spec = NewSpec {
        name: String::new(),
        pod,
        selector,
        containername: container,
        namespace,
        localpath: local.display().to_string(),
        remotepath: remote.to_string(),
        reload: args.reload && !args.no_reload,
        localreadonly: args.local_read_only,
        remotereadonly: args.remote_read_only,
    };
    Ok((spec, warning))
}

fn refused(refusal: spec::Refusal) -> Error {
    Error::InvalidSpec {
        message: refusal.message,
        help: refusal.help,
    }
}

/// A readable, unused name: the local folder's name and the target, e.g. `src-web`.
fn generate_name(spec: &NewSpec, taken: &[String]) -> String {
    let folder = std::path::Path::new(&spec.localpath)
        .file_name()
        .map(|n| slug(&n.to_string_lossy(), 30))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "root".into());
    let target = if !spec.pod.is_empty() {
        spec.pod.clone()
    } else {
        LabelSelector::parse(&spec.selector)
            .ok()
            .and_then(|s| {
                s.requirements()
                    .first()
                    .map(|r| r.values.first().cloned().unwrap_or_else(|| r.key.clone()))
            })
            .unwrap_or_default()
    };
    let target = slug(&target, 30);
    let base = if target.is_empty() || target == folder {
        folder
    } else {
        format!("{folder}-{target}")
    };
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_and_unused() {
        let spec = NewSpec {
            localpath: "/home/u/Shop API".into(),
            selector: "app.kubernetes.io/name=web,tier".into(),
            ..NewSpec::default()
        };
        assert_eq!(generate_name(&spec, &[]), "shop-api-web");
        assert_eq!(
            generate_name(&spec, &["shop-api-web".into(), "shop-api-web-2".into()]),
            "shop-api-web-3"
        );
        let pod = NewSpec {
            localpath: "/".into(),
            pod: "db-0".into(),
            ..NewSpec::default()
        };
        assert_eq!(generate_name(&pod, &[]), "root-db-0");
    }
}
