//! Templates in spec fields (minijinja).
//!
//! Every string field of a spec may be a template. All of them see:
//!
//! | variable  | value                                                                 |
//! |-----------|-----------------------------------------------------------------------|
//! | `env`     | the process environment (`{{ env.USER }}`)                            |
//! | `vars`    | `[vars]` from the config files, then `--var key=value`                |
//! | `git`     | `branch`, `commit`, `short_commit` of the project's repository        |
//! | `project` | name of the project directory (the one holding `ksync.toml`)          |
//! | `user`    | the local user name                                                   |
//!
//! Fields rendered per matched container ([`PER_CONTAINER_FIELDS`]) also see `pod.name`,
//! `pod.namespace`, `pod.labels`, `pod.annotations`, `node` and `container`.
//!
//! Undefined variables are errors that name the variable and say how to define it. The
//! `slug` filter turns any string into a DNS-1123 label (`preview-{{ git.branch | slug }}`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use crate::git::GitInfo;
use crate::names::DNS1123_LABEL_MAX;

/// Spec fields rendered once per matched container rather than once at load.
pub const PER_CONTAINER_FIELDS: &[&str] = &["remotepath"];

/// Variables only known once a container matched.
const CONTAINER_ROOTS: &[&str] = &["pod", "node", "container"];
/// Keys of `pod`.
const POD_KEYS: &[&str] = &["name", "namespace", "labels", "annotations"];
/// Variables every field sees.
const STATIC_ROOTS: &[&str] = &["env", "vars", "git", "project", "user"];

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid minijinja syntax.
    #[error("template syntax error: {detail}")]
    Syntax {
        /// What the parser said.
        detail: String,
    },
    /// A variable the template uses has no value.
    #[error("undefined variable `{variable}`")]
    Undefined {
        /// The variable path, e.g. `vars.tag` or `pod.labels.app`.
        variable: String,
        /// How to define it.
        help: String,
    },
    /// Rendering failed for another reason (a filter's argument, …).
    #[error("template error: {detail}")]
    Render {
        /// What minijinja said.
        detail: String,
    },
}

impl TemplateError {
    /// How to fix it, when known.
    pub fn help(&self) -> Option<&str> {
        match self {
            TemplateError::Undefined { help, .. } => Some(help),
            TemplateError::Syntax { .. } => Some(
                "see https://docs.rs/minijinja for the syntax; a literal `{{` is written `{{ '{{' }}`",
            ),
            TemplateError::Render { .. } => None,
        }
    }
}

/// What a per-container template sees of the matched container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContainerContext {
    /// The pod.
    pub pod: PodContext,
    /// Name of the node the pod runs on.
    pub node: String,
    /// Name of the matched container.
    pub container: String,
}

/// The `pod` variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PodContext {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Inputs to the static template context.
#[derive(Debug, Clone, Default)]
pub struct ContextInputs {
    /// Merged `vars` (files, then `--var`).
    pub vars: BTreeMap<String, Value>,
    /// The project directory (holding `ksync.toml`), or the working directory.
    pub project_dir: PathBuf,
    /// The process environment.
    pub env: BTreeMap<String, String>,
}

/// Renders spec fields. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Renderer {
    env: Arc<Environment<'static>>,
    base: BTreeMap<&'static str, Value>,
    git: Arc<LazyGit>,
}

impl Renderer {
    /// A renderer over `inputs`; `git` is read from the project directory on first use.
    pub fn new(inputs: ContextInputs) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("slug", slug_filter);
        let git = Arc::new(LazyGit {
            dir: inputs.project_dir.clone(),
            info: OnceLock::new(),
        });
        let project = inputs
            .project_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|k| inputs.env.get(*k).filter(|v| !v.is_empty()).cloned());
        let mut base = BTreeMap::new();
        base.insert("env", Value::from(inputs.env.clone()));
        base.insert("vars", Value::from(inputs.vars));
        base.insert("git", Value::from_dyn_object(git.clone()));
        base.insert("project", Value::from(project));
        if let Some(user) = user {
            base.insert("user", Value::from(user));
        }
        Renderer {
            env: Arc::new(env),
            base,
            git,
        }
    }

    /// True when `source` contains template syntax at all.
    pub fn is_template(source: &str) -> bool {
        source.contains("{{") || source.contains("{%") || source.contains("{#")
    }

    /// True when `source` uses `pod`, `node` or `container`, so it can only be rendered per
    /// matched container.
    pub fn uses_container(&self, source: &str) -> bool {
        self.variables(source)
            .map(|vars| vars.iter().any(|v| CONTAINER_ROOTS.contains(&root(v))))
            .unwrap_or(false)
    }

    /// Renders a field that is rendered once, at load (`field` names it in errors).
    pub fn render(&self, field: &str, source: &str) -> Result<String, TemplateError> {
        if !Self::is_template(source) {
            return Ok(source.to_string());
        }
        let vars = self.variables(source)?;
        if let Some(v) = vars.iter().find(|v| CONTAINER_ROOTS.contains(&root(v))) {
            return Err(TemplateError::Undefined {
                variable: v.clone(),
                help: format!(
                    "`pod`, `node` and `container` are known only per matched container; of the spec fields only {} may use them",
                    PER_CONTAINER_FIELDS.join(", ")
                ),
            });
        }
        self.render_with(field, source, Value::from(self.base.clone()), None)
    }

    /// Checks, at load, a per-container field: syntax, and that every variable it uses
    /// exists (static ones) or is one a container provides.
    pub fn check_per_container(&self, source: &str) -> Result<(), TemplateError> {
        if !Self::is_template(source) {
            return Ok(());
        }
        for var in self.variables(source)? {
            let mut parts = var.split('.');
            let first = parts.next().unwrap_or_default();
            if CONTAINER_ROOTS.contains(&first) {
                if first == "pod"
                    && let Some(key) = parts.next()
                    && !POD_KEYS.contains(&key)
                {
                    return Err(TemplateError::Undefined {
                        variable: var.clone(),
                        help: format!("`pod` has {}", POD_KEYS.join(", ")),
                    });
                }
                continue;
            }
            let mut value = self.base.get(first).cloned().unwrap_or(Value::UNDEFINED);
            for part in parts {
                if value.is_undefined() {
                    break;
                }
                value = value.get_attr(part).unwrap_or(Value::UNDEFINED);
            }
            if value.is_undefined() {
                return Err(self.undefined(&var, None));
            }
        }
        Ok(())
    }

    /// Renders a per-container field for one matched container.
    pub fn render_for_container(
        &self,
        field: &str,
        source: &str,
        container: &ContainerContext,
    ) -> Result<String, TemplateError> {
        if !Self::is_template(source) {
            return Ok(source.to_string());
        }
        let mut ctx = self.base.clone();
        let pod = &container.pod;
        ctx.insert(
            "pod",
            minijinja::context! {
                name => pod.name.clone(),
                namespace => pod.namespace.clone(),
                labels => pod.labels.clone(),
                annotations => pod.annotations.clone(),
            },
        );
        ctx.insert("node", Value::from(container.node.clone()));
        ctx.insert("container", Value::from(container.container.clone()));
        self.render_with(field, source, Value::from(ctx), Some(container))
    }

    fn render_with(
        &self,
        field: &str,
        source: &str,
        ctx: Value,
        container: Option<&ContainerContext>,
    ) -> Result<String, TemplateError> {
        self.env
            .render_named_str(field, source, ctx)
            .map_err(|e| self.classify(e, container))
    }

    fn variables(&self, source: &str) -> Result<Vec<String>, TemplateError> {
        let template = self
            .env
            .template_from_str(source)
            .map_err(|e| TemplateError::Syntax {
                detail: e.detail().unwrap_or("invalid syntax").to_string(),
            })?;
        let mut vars: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        vars.sort();
        Ok(vars)
    }

    fn classify(&self, e: minijinja::Error, container: Option<&ContainerContext>) -> TemplateError {
        match e.kind() {
            ErrorKind::SyntaxError => TemplateError::Syntax {
                detail: e.detail().unwrap_or("invalid syntax").to_string(),
            },
            ErrorKind::UndefinedError => {
                let detail = e.detail().unwrap_or_default();
                let variable = detail.split('`').nth(1).unwrap_or("a variable").to_string();
                self.undefined(&variable, container)
            }
            _ => TemplateError::Render {
                detail: e
                    .detail()
                    .map_or_else(|| e.kind().to_string(), str::to_string),
            },
        }
    }

    fn undefined(&self, variable: &str, container: Option<&ContainerContext>) -> TemplateError {
        let normalized = variable.replace("['", ".").replace("']", "");
        let mut parts = normalized.split('.');
        let first = parts.next().unwrap_or_default();
        let second = parts.next().unwrap_or("NAME");
        let help = match first {
            "env" => format!(
                "the environment variable `{second}` is not set; set it, or give a fallback: `{{{{ env.{second} | default(\"…\") }}}}`"
            ),
            "vars" => format!(
                "add `{second} = \"…\"` under `[vars]` in ksync.toml (or ksync.local.toml), or pass `--var {second}=…`"
            ),
            "git" => match self.git.get() {
                Err(why) => format!("there is no git information: {why}"),
                Ok(info) if second == "branch" && info.branch.is_none() => "HEAD is detached and no CI branch variable (GITHUB_HEAD_REF, CI_COMMIT_REF_NAME, …) is set; check out a branch".to_string(),
                Ok(_) => "`git` has branch, commit and short_commit".to_string(),
            },
            "user" => "no user name in USER, LOGNAME or USERNAME; set USER".to_string(),
            "pod" => match (second, container) {
                ("labels" | "annotations", Some(c)) => {
                    let map = if second == "labels" { &c.pod.labels } else { &c.pod.annotations };
                    let have: Vec<&str> = map.keys().map(String::as_str).collect();
                    format!(
                        "pod {}/{} has no such {}; it has: {}. Give a fallback with `| default(\"…\")`",
                        c.pod.namespace,
                        c.pod.name,
                        second.trim_end_matches('s'),
                        if have.is_empty() { "none".to_string() } else { have.join(", ") }
                    )
                }
                _ => format!("`pod` has {}", POD_KEYS.join(", ")),
            },
            other => {
                let mut known: Vec<&str> = STATIC_ROOTS.to_vec();
                known.extend(CONTAINER_ROOTS);
                match crate::config::did_you_mean(other, &known) {
                    Some(s) => format!("did you mean `{s}`? Templates see {}", STATIC_ROOTS.join(", ")),
                    None => format!(
                        "templates see {} (and {} in {})",
                        STATIC_ROOTS.join(", "),
                        CONTAINER_ROOTS.join(", "),
                        PER_CONTAINER_FIELDS.join(", ")
                    ),
                }
            }
        };
        TemplateError::Undefined {
            variable: variable.to_string(),
            help,
        }
    }
}

fn root(variable: &str) -> &str {
    variable.split(['.', '[']).next().unwrap_or(variable)
}

/// `git` in templates: read on first use, at most once.
#[derive(Debug)]
struct LazyGit {
    dir: PathBuf,
    info: OnceLock<Result<GitInfo, String>>,
}

impl LazyGit {
    fn get(&self) -> &Result<GitInfo, String> {
        self.info.get_or_init(|| GitInfo::discover(&self.dir))
    }
}

impl Object for LazyGit {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let info = self.get().as_ref().ok()?;
        match key.as_str()? {
            "branch" => info.branch.clone().map(Value::from),
            "commit" => Some(Value::from(info.commit.clone())),
            "short_commit" => Some(Value::from(info.short_commit.clone())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["branch", "commit", "short_commit"])
    }
}

fn slug_filter(value: String, max: Option<usize>) -> Result<String, minijinja::Error> {
    let max = max.unwrap_or(DNS1123_LABEL_MAX);
    if !(10..=DNS1123_LABEL_MAX).contains(&max) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("slug length must be between 10 and {DNS1123_LABEL_MAX}, got {max}"),
        ));
    }
    Ok(slug(&value, max))
}

/// Turns `input` into a DNS-1123 label of at most `max` characters: lowercase, runs of other
/// characters become one `-`, no `-` at either end. Longer results are cut and end in an
/// 8-hex-digit hash of the whole input, so distinct long inputs stay distinct.
pub fn slug(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.len() <= max {
        return trimmed.to_string();
    }
    let hash = format!("{:08x}", fnv1a(input.as_bytes()));
    let keep = max - hash.len() - 1;
    format!("{}-{hash}", trimmed[..keep].trim_end_matches('-'))
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The process environment, as templates see it.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Shorthand for tests and callers without vars: a renderer rooted at `dir`.
pub fn renderer_for(dir: &Path) -> Renderer {
    Renderer::new(ContextInputs {
        vars: BTreeMap::new(),
        project_dir: dir.to_path_buf(),
        env: process_env(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer() -> Renderer {
        renderer_in(&std::env::temp_dir().join("ksync-template-test/shop"))
    }

    fn renderer_in(project_dir: &Path) -> Renderer {
        std::fs::create_dir_all(project_dir).expect("project dir");
        let mut vars = BTreeMap::new();
        vars.insert("tag".to_string(), Value::from("v1"));
        let mut env = BTreeMap::new();
        env.insert("USER".to_string(), "ada".to_string());
        env.insert("HOME".to_string(), "/home/ada".to_string());
        Renderer::new(ContextInputs {
            vars,
            project_dir: project_dir.to_path_buf(),
            env,
        })
    }

    fn container() -> ContainerContext {
        ContainerContext {
            pod: PodContext {
                name: "web-7d9f".into(),
                namespace: "dev".into(),
                labels: [("app".to_string(), "web".to_string())].into(),
                annotations: BTreeMap::new(),
            },
            node: "node-1".into(),
            container: "app".into(),
        }
    }

    #[test]
    fn renders_static_context() {
        let r = renderer();
        assert_eq!(
            r.render(
                "f",
                "/srv/{{ project }}/{{ user }}/{{ vars.tag }}/{{ env.HOME }}"
            )
            .expect("renders"),
            "/srv/shop/ada/v1//home/ada"
        );
        assert_eq!(r.render("f", "plain {x}").expect("literal"), "plain {x}");
    }

    #[test]
    fn undefined_variables_are_named_with_a_fix() {
        let r = renderer();
        let e = r.render("f", "{{ vars.nope }}").expect_err("undefined");
        assert_eq!(e.to_string(), "undefined variable `vars.nope`");
        assert!(e.help().expect("help").contains("--var nope="));
        let e = r.render("f", "{{ env.NOPE }}").expect_err("undefined");
        assert!(e.help().expect("help").contains("default("));
        let e = r.render("f", "{{ projet }}").expect_err("undefined");
        assert!(e.help().expect("help").contains("did you mean `project`"));
        let e = r.render("f", "{{ git.branch }}").expect_err("no repo");
        assert!(
            e.help()
                .expect("help")
                .contains("not inside a git repository"),
            "{e:?}"
        );
    }

    #[test]
    fn container_variables_only_per_container() {
        let r = renderer();
        let e = r
            .render("localpath", "{{ pod.name }}")
            .expect_err("static field");
        assert!(e.help().expect("help").contains("remotepath"));
        assert!(r.uses_container("/app/{{ pod.labels.app }}"));
        assert!(!r.uses_container("/app/{{ vars.tag }}"));
        r.check_per_container("/app/{{ pod.labels.app }}/{{ node }}/{{ vars.tag }}")
            .expect("valid");
        let e = r
            .check_per_container("/app/{{ pod.label.app }}")
            .expect_err("bad key");
        assert!(e.help().expect("help").contains("labels"));
        r.check_per_container("/app/{{ vars.missing }}")
            .expect_err("static var missing");
        let out = r
            .render_for_container(
                "remotepath",
                "/srv/{{ pod.namespace }}/{{ pod.labels.app }}/{{ container }}@{{ node }}",
                &container(),
            )
            .expect("renders");
        assert_eq!(out, "/srv/dev/web/app@node-1");
        let e = r
            .render_for_container("remotepath", "/srv/{{ pod.labels.tier }}", &container())
            .expect_err("missing label");
        assert_eq!(e.to_string(), "undefined variable `pod.labels.tier`");
        assert!(e.help().expect("help").contains("it has: app"), "{e:?}");
    }

    #[test]
    fn slug_makes_dns_labels() {
        assert_eq!(slug("feature/Login_Page", 63), "feature-login-page");
        assert_eq!(slug("--Hello,  World!--", 63), "hello-world");
        assert_eq!(slug("", 63), "");
        let long = "a".repeat(100);
        let s = slug(&long, 63);
        assert_eq!(s.len(), 63);
        assert_ne!(s, slug(&format!("{long}b"), 63));
        crate::names::check_dns1123_label(&s).expect("label");
        let r = renderer();
        assert_eq!(
            r.render("f", "preview-{{ 'Feature/ABC_1' | slug }}")
                .expect("renders"),
            "preview-feature-abc-1"
        );
        assert_eq!(
            r.render("f", "{{ 'abcdefghijklmnopqrstuvwxyz' | slug(12) }}")
                .expect("renders")
                .len(),
            12
        );
        r.render("f", "{{ 'x' | slug(3) }}").expect_err("too short");
    }

    #[test]
    fn syntax_errors() {
        let e = renderer().render("f", "{{ vars.tag }").expect_err("syntax");
        assert!(matches!(e, TemplateError::Syntax { .. }), "{e:?}");
    }
}
