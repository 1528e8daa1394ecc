//! How the session token travels: a cookie (default) or a request/response header.

use cookie::{Cookie, SameSite};
use http::header::{HeaderMap, HeaderName, HeaderValue, COOKIE, SET_COOKIE};

/// The cookie's attributes.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) persistent: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "session".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            persistent: false,
        }
    }
}

/// Where the token is read from and written to.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Cookie(CookieConfig),
    Header(HeaderName),
}

impl Default for Transport {
    fn default() -> Self {
        Self::Cookie(CookieConfig::default())
    }
}

impl Transport {
    /// The cookie or header name: what a sealed cookie is bound to.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Cookie(config) => &config.name,
            Self::Header(name) => name.as_str(),
        }
    }

    /// The first token the client sent, unparsed. Never decodes anything.
    pub(crate) fn read_token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        match self {
            Self::Cookie(config) => headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == config.name)
                .map(|(_, value)| value.trim_matches('"')),
            Self::Header(name) => headers.get(name).and_then(|value| value.to_str().ok()),
        }
    }

    /// Sends `token` to the client. `max_age_ms` is the time left before the session
    /// expires (used by persistent cookies only).
    pub(crate) fn write_token(
        &self,
        headers: &mut HeaderMap,
        token: &str,
        max_age_ms: Option<u64>,
    ) {
        match self {
            Self::Cookie(config) => {
                let mut cookie = base_cookie(config, token.to_owned());
                if config.persistent {
                    if let Some(ms) = max_age_ms {
                        let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
                        cookie.set_max_age(cookie::time::Duration::seconds(secs));
                    }
                }
                append_cookie(headers, &cookie);
            }
            Self::Header(name) => {
                if let Ok(value) = HeaderValue::from_str(token) {
                    headers.insert(name.clone(), value);
                }
            }
        }
    }

    /// Tells the client to forget its token: a removal cookie with the original attributes
    /// and `Max-Age=0`, or an empty header.
    pub(crate) fn write_removal(&self, headers: &mut HeaderMap) {
        match self {
            Self::Cookie(config) => {
                let mut cookie = base_cookie(config, String::new());
                cookie.set_max_age(cookie::time::Duration::ZERO);
                cookie.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
                append_cookie(headers, &cookie);
            }
            Self::Header(name) => {
                headers.insert(name.clone(), HeaderValue::from_static(""));
            }
        }
    }

    /// Whether sending the token again is needed to keep the client's copy alive as long as
    /// the session (persistent cookies carry their own expiry).
    pub(crate) fn refreshes_expiry(&self) -> bool {
        matches!(self, Self::Cookie(config) if config.persistent)
    }
}

fn base_cookie(config: &CookieConfig, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(config.name.clone(), value);
    cookie.set_secure(config.secure);
    cookie.set_http_only(config.http_only);
    cookie.set_same_site(config.same_site);
    cookie.set_path(config.path.clone());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.clone());
    }
    cookie
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    // Names and values are checked when the layer is configured and tokens are URL-safe
    // base64, so the header value is always valid; a failure would only drop the cookie.
    match HeaderValue::from_str(&cookie.to_string()) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
        }
        Err(error) => tracing::error!(%error, "session cookie is not a valid header value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie_among_others() {
        let transport = Transport::default();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sessionx=2"));
        headers.append(COOKIE, HeaderValue::from_static("b=3;session=tok; c=4"));
        assert_eq!(transport.read_token(&headers), Some("tok"));
        assert_eq!(transport.read_token(&HeaderMap::new()), None);
    }

    #[test]
    fn removal_cookie_repeats_the_attributes() {
        let transport = Transport::Cookie(CookieConfig {
            path: "/app".to_owned(),
            domain: Some("example.com".to_owned()),
            same_site: SameSite::Strict,
            ..CookieConfig::default()
        });
        let mut headers = HeaderMap::new();
        transport.write_removal(&mut headers);
        let value = headers[SET_COOKIE].to_str().unwrap();
        for part in [
            "session=",
            "Path=/app",
            "Domain=example.com",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=0",
        ] {
            assert!(value.contains(part), "{value} lacks {part}");
        }
    }
}
