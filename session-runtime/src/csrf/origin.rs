//! Where an unsafe request comes from: the `Origin` / `Sec-Fetch-Site` half of the CSRF
//! check (pure; unit-tested here, over HTTP in the integration suite).
//!
//! Rules, in order:
//! 1. `Origin` present: it must be this site's own origin (`https://` + the `Host` header,
//!    or `http://` when the layer is not `secure`) or one of the trusted origins; anything
//!    else, `null` included, is refused, whatever the token says.
//! 2. No `Origin`, `Sec-Fetch-Site` present: `same-origin` and `none` (typed in the address
//!    bar, a bookmark) pass; `same-site` and `cross-site` are refused.
//! 3. Neither: the request passes this half (older clients); the token still decides.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Uri};

use super::rejection::CsrfRejection;

/// `Sec-Fetch-Site`, which browsers send on every request since 2020-2023.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Lowercases `scheme://host[:port]` and drops a default port, so that equal origins
/// compare equal. A trailing `/` (a configuration typo) is dropped too.
pub(crate) fn normalize(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = if origin.starts_with("https://") {
        ":443"
    } else if origin.starts_with("http://") {
        ":80"
    } else {
        return origin;
    };
    match origin.strip_suffix(default_port) {
        Some(stripped) => stripped.to_owned(),
        None => origin,
    }
}

/// This site's own origin for a request, from its `Host` header (or, in HTTP/2, the
/// request's authority).
fn own_origin(headers: &HeaderMap, uri: &Uri, secure: bool) -> Option<String> {
    let host = match headers.get(HOST) {
        Some(host) => host.to_str().ok()?.to_owned(),
        None => uri.authority()?.as_str().to_owned(),
    };
    let scheme = if secure { "https" } else { "http" };
    Some(normalize(&format!("{scheme}://{host}")))
}

/// Checks where the request comes from. `trusted` holds normalized origins.
pub(crate) fn check(
    headers: &HeaderMap,
    uri: &Uri,
    secure: bool,
    trusted: &[String],
) -> Result<(), CsrfRejection> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = normalize(&String::from_utf8_lossy(origin.as_bytes()));
        let own = own_origin(headers, uri, secure);
        if own.as_deref() == Some(origin.as_str()) || trusted.contains(&origin) {
            return Ok(());
        }
        return Err(CsrfRejection::CrossOrigin {
            origin,
            own: own.unwrap_or_else(|| "(no Host header)".to_owned()),
        });
    }
    match headers.get(SEC_FETCH_SITE).map(http::HeaderValue::as_bytes) {
        None | Some(b"same-origin" | b"none") => Ok(()),
        Some(other) => Err(CsrfRejection::CrossSite {
            sec_fetch_site: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, value.parse().unwrap());
        }
        map
    }

    fn run(pairs: &[(&str, &str)], secure: bool) -> Result<(), CsrfRejection> {
        let trusted = [normalize("https://admin.example.com/")];
        check(&headers(pairs), &Uri::from_static("/"), secure, &trusted)
    }

    #[test]
    fn same_origin_passes_with_the_configured_scheme_only() {
        let same = [
            ("host", "app.example.com"),
            ("origin", "https://app.example.com"),
        ];
        assert!(run(&same, true).is_ok());
        assert!(matches!(
            run(&same, false),
            Err(CsrfRejection::CrossOrigin { .. })
        ));
        let plain = [
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ];
        assert!(run(&plain, false).is_ok());
    }

    #[test]
    fn default_ports_and_case_do_not_matter() {
        let pairs = [
            ("host", "App.Example.com:443"),
            ("origin", "https://app.example.com"),
        ];
        assert!(run(&pairs, true).is_ok());
    }

    #[test]
    fn trusted_origins_pass_and_others_fail() {
        let trusted = [
            ("host", "app.example.com"),
            ("origin", "https://admin.example.com"),
        ];
        assert!(run(&trusted, true).is_ok());
        for origin in [
            "https://evil.example",
            "null",
            "http://app.example.com:8080",
        ] {
            let pairs = [("host", "app.example.com"), ("origin", origin)];
            assert!(
                matches!(run(&pairs, true), Err(CsrfRejection::CrossOrigin { .. })),
                "{origin}"
            );
        }
    }

    #[test]
    fn a_cross_origin_origin_wins_over_sec_fetch_site() {
        let pairs = [
            ("host", "app.example.com"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert!(run(&pairs, true).is_err());
    }

    #[test]
    fn sec_fetch_site_decides_without_origin() {
        for (value, passes) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let pairs = [("host", "app.example.com"), ("sec-fetch-site", value)];
            assert_eq!(run(&pairs, true).is_ok(), passes, "{value}");
        }
    }

    #[test]
    fn neither_header_passes_this_half() {
        assert!(run(&[("host", "app.example.com")], true).is_ok());
    }
}
