//! Kubernetes `Status` objects: the body and code of every error the API server returns.

use serde_json::{Value, json};

/// An API error as the real API server reports it: an HTTP code, a machine-readable reason
/// and a message, sent as a `Status` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    /// HTTP status code.
    pub(crate) code: u16,
    /// `reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, ...).
    pub(crate) reason: &'static str,
    /// Human-readable message.
    pub(crate) message: String,
    /// `details`, when the error is about one object.
    pub(crate) details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400: the request is malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 403: the caller may not do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn no_route(path: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 404 for a missing object; `resource` is the plural (`pods`) or `plural.group`.
    pub(crate) fn not_found(resource: &str, name: &str) -> ApiError {
        ApiError {
            details: Some(
                json!({ "name": name, "kind": resource_kind(resource), "group": resource_group(resource) }),
            ),
            ..ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
        }
    }

    /// 405: the verb is not supported on this resource.
    pub(crate) fn method_not_supported(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// 409 on create when the object exists.
    pub(crate) fn already_exists(resource: &str, name: &str) -> ApiError {
        ApiError {
            details: Some(
                json!({ "name": name, "kind": resource_kind(resource), "group": resource_group(resource) }),
            ),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{resource} \"{name}\" already exists"),
            )
        }
    }

    /// 409 for a write that lost a race or an apply that conflicts with another manager.
    pub(crate) fn conflict(message: impl Into<String>, details: Option<Value>) -> ApiError {
        ApiError {
            details,
            ..ApiError::new(409, "Conflict", message)
        }
    }

    /// 410: the resource version is older than the oldest the server still has.
    pub(crate) fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// 415: a patch type the server does not accept.
    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// 422: the object is invalid.
    pub(crate) fn invalid(resource: &str, name: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            details: Some(
                json!({ "name": name, "kind": resource_kind(resource), "group": resource_group(resource) }),
            ),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{resource} \"{name}\" is invalid: {message}"),
            )
        }
    }

    /// The `Status` object.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// A `Status` reporting success, as DELETE returns for most kinds.
pub(crate) fn success(resource: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": { "name": name, "group": resource_group(resource), "kind": resource_kind(resource), "uid": uid },
    })
}

/// `pods` of `pods`, `daemonsets` of `daemonsets.apps`.
fn resource_kind(resource: &str) -> &str {
    resource
        .split_once('.')
        .map_or(resource, |(plural, _)| plural)
}

fn resource_group(resource: &str) -> &str {
    resource.split_once('.').map_or("", |(_, group)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_a_kubernetes_status() {
        let status = ApiError::not_found("daemonsets.apps", "agent").to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "daemonsets.apps \"agent\" not found");
        assert_eq!(status["details"]["kind"], "daemonsets");
        assert_eq!(status["details"]["group"], "apps");
    }
}
