//! The project's git state (branch and commit) for templates, read with the `git` command.
//!
//! This is an IO boundary: it runs `git` in the project directory. It is only called when a
//! template actually uses `git.*`.

use std::path::Path;
use std::process::Command;

/// Branch and commit of the repository that holds the project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GitInfo {
    /// Current branch. On a detached HEAD (as in most CI checkouts) it is taken from the CI's
    /// environment (`GITHUB_HEAD_REF`, `GITHUB_REF_NAME`, `CI_COMMIT_REF_NAME`, `BRANCH_NAME`,
    /// `GIT_BRANCH`) when one of them is set; otherwise it is absent.
    pub branch: Option<String>,
    /// Full commit hash of HEAD.
    pub commit: String,
    /// The first 8 characters of the commit hash.
    pub short_commit: String,
}

/// CI variables that name the branch of a detached checkout, in the order tried.
const CI_BRANCH_VARS: &[&str] = &[
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "BRANCH_NAME",
    "GIT_BRANCH",
];

impl GitInfo {
    /// Reads the state of the repository containing `dir`. The error says why there is none,
    /// as a sentence fragment ("… is not inside a git repository").
    pub fn discover(dir: &Path) -> Result<GitInfo, String> {
        let commit = git(dir, &["rev-parse", "--verify", "HEAD"])?;
        let branch = git(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
            .or_else(|| {
                CI_BRANCH_VARS
                    .iter()
                    .filter_map(|v| std::env::var(v).ok())
                    .map(|b| b.trim_start_matches("refs/heads/").to_string())
                    .find(|b| !b.is_empty())
            });
        let short_commit = commit.chars().take(8).collect();
        Ok(GitInfo {
            branch,
            commit,
            short_commit,
        })
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("the `git` command could not be run ({e}); install git"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(if stderr.contains("not a git repository") {
            format!("{} is not inside a git repository", dir.display())
        } else if stderr.contains("Needed a single revision") || stderr.contains("unknown revision")
        {
            format!("the git repository at {} has no commit yet", dir.display())
        } else {
            format!("`git {}` failed: {}", args.join(" "), stderr.trim())
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn reads_branch_and_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        run(d, &["init", "-q", "-b", "feature/Login-Page"]);
        assert!(
            GitInfo::discover(d)
                .expect_err("no commit yet")
                .contains("no commit")
        );
        run(d, &["commit", "-q", "--allow-empty", "-m", "x"]);
        let info = GitInfo::discover(d).expect("repo");
        assert_eq!(info.branch.as_deref(), Some("feature/Login-Page"));
        assert_eq!(info.commit.len(), 40);
        assert_eq!(info.short_commit, info.commit[..8]);
    }

    #[test]
    fn outside_a_repository_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = GitInfo::discover(dir.path()).expect_err("not a repo");
        assert!(e.contains("not inside a git repository"), "{e}");
    }
}
