//! `ksync delete`: remove specs from the user file `~/.ksync/ksync.yaml`.

use clap::Args;

use super::{Context, print};
use crate::config::{Role, UserFile, declared_specs, tilde};
use crate::diagnostic::display_path;
use crate::error::Error;

/// Arguments of `ksync delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Names of the specs to remove.
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

pub(super) fn run(ctx: &Context, args: DeleteArgs) -> Result<(), Error> {
    let user = UserFile::open(&ctx.home()?.user_file())?;
    let known = user.names();
    let unknown: Vec<&String> = args.names.iter().filter(|n| !known.contains(n)).collect();
    if !unknown.is_empty() {
        let declared = declared_specs(&ctx.load_options(None))?;
        let elsewhere: Vec<String> = unknown
            .iter()
            .filter_map(|name| {
                declared
                    .iter()
                    .find(|d| &d.name == *name && d.role != Role::User)
                    .map(|d| {
                        format!(
                            "`{name}` is defined in {}; remove it there",
                            display_path(&d.path, &ctx.cwd)
                        )
                    })
            })
            .collect();
        let help = if !elsewhere.is_empty() {
            elsewhere.join("; ")
        } else if known.is_empty() {
            "the file has no specs".to_string()
        } else {
            format!("known specs: {}", known.join(", "))
        };
        let names: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
        return Err(Error::UnknownSpecs {
            names: names.join(", "),
            file: tilde(user.path()),
            help,
        });
    }
    user.write(&user.without(&args.names))?;
    let names: Vec<String> = args.names.iter().map(|n| format!("`{n}`")).collect();
    print(&format!(
        "Deleted {} {} from {}\n",
        if names.len() == 1 { "spec" } else { "specs" },
        names.join(", "),
        tilde(user.path())
    ));
    Ok(())
}
