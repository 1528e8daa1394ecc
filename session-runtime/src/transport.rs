//! How the session token travels: a cookie (default) or a request/response header; and
//! what a response that depends on it must say to caches.

use std::fmt::Write as _;

use cookie::{Cookie, SameSite};
use http::header::{HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};

/// The default cookie name while the cookie is `Secure`: browsers then insist on `Secure`,
/// `Path=/` and no `Domain`, so no sibling subdomain or plain-HTTP attacker can set a cookie
/// of that name for this host.
pub(crate) const DEFAULT_SECURE_NAME: &str = "__Host-session";
/// The default cookie name with `secure(false)` (local development over plain HTTP), where
/// a `__Host-` name would be dropped by browsers.
pub(crate) const DEFAULT_PLAIN_NAME: &str = "session";
/// How many cookies of the session's name one request may carry that are looked at; more
/// are ignored.
pub(crate) const MAX_CANDIDATES: usize = 4;

/// The tokens a request carries, in the order the client sent them (at most
/// [`MAX_CANDIDATES`], duplicates dropped), and whether it carried more than that: then
/// none is trusted, since the ones past the bound were never looked at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Candidates<'h> {
    pub(crate) tokens: [Option<&'h str>; MAX_CANDIDATES],
    pub(crate) overflow: bool,
}

/// The cookie's attributes.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    /// `None`: the default, which depends on `secure`.
    pub(crate) name: Option<String>,
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
            name: None,
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

impl CookieConfig {
    pub(crate) fn name(&self) -> &str {
        match &self.name {
            Some(name) => name,
            None if self.secure => DEFAULT_SECURE_NAME,
            None => DEFAULT_PLAIN_NAME,
        }
    }

    /// The rules of cookie name prefixes: browsers silently drop a cookie that breaks them,
    /// which would look like sessions that never stick.
    fn check(&self) -> Result<(), String> {
        let name = self.name();
        // Browsers match the prefixes without regard to case.
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            if !self.secure {
                return Err(format!(
                    "session cookie `{name}`: a `__Host-` cookie must be Secure; remove \
                     `.secure(false)` or use a name without the prefix (such as `session`) for \
                     plain-HTTP development"
                ));
            }
            if self.domain.is_some() {
                return Err(format!(
                    "session cookie `{name}`: a `__Host-` cookie cannot have a Domain; remove \
                     `.domain(..)` or use a `__Secure-` name"
                ));
            }
            if self.path != "/" {
                return Err(format!(
                    "session cookie `{name}`: a `__Host-` cookie must have Path=/; remove \
                     `.path(..)` or use a `__Secure-` name"
                ));
            }
        }
        if lower.starts_with("__secure-") && !self.secure {
            return Err(format!(
                "session cookie `{name}`: a `__Secure-` cookie must be Secure; remove \
                 `.secure(false)` or use a name without the prefix"
            ));
        }
        Ok(())
    }
}

impl Transport {
    /// The cookie or header name: what a sealed cookie is bound to.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Cookie(config) => config.name(),
            Self::Header(name) => name.as_str(),
        }
    }

    /// Checks the configuration against what browsers accept; the message names the rule.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Self::Cookie(config) => config.check(),
            Self::Header(_) => Ok(()),
        }
    }

    /// The tokens the client sent, unparsed, in order: every cookie of the session's name
    /// (a browser sends several when another path or domain set one too), or the header.
    /// Never decodes anything.
    pub(crate) fn read_tokens<'h>(&self, headers: &'h HeaderMap) -> Candidates<'h> {
        let mut found = Candidates {
            tokens: [None; MAX_CANDIDATES],
            overflow: false,
        };
        match self {
            Self::Cookie(config) => {
                let name = config.name().as_bytes();
                // Split the raw bytes: one cookie with non-ASCII bytes, of any name, must not
                // hide the others (a header value need not be valid UTF-8 as a whole).
                let values = headers
                    .get_all(COOKIE)
                    .iter()
                    .flat_map(|value| value.as_bytes().split(|byte| *byte == b';'))
                    .filter_map(|pair| {
                        let pair = pair.trim_ascii();
                        let at = pair.iter().position(|byte| *byte == b'=')?;
                        (&pair[..at] == name).then(|| &pair[at + 1..])
                    })
                    .filter_map(|value| std::str::from_utf8(value).ok())
                    .map(|value| value.trim_matches('"'));
                let mut count = 0;
                for value in values {
                    if found.tokens[..count].contains(&Some(value)) {
                        continue;
                    }
                    if count == MAX_CANDIDATES {
                        found.overflow = true;
                        break;
                    }
                    found.tokens[count] = Some(value);
                    count += 1;
                }
            }
            Self::Header(name) => {
                found.tokens[0] = headers.get(name).and_then(|value| value.to_str().ok());
            }
        }
        found
    }

    /// Marks a response that depended on the session: caches must key it by the token.
    pub(crate) fn vary(&self, headers: &mut HeaderMap) {
        let (token, value) = match self {
            Self::Cookie(_) => ("cookie", HeaderValue::from_static("cookie")),
            Self::Header(name) => (name.as_str(), HeaderValue::from(name.clone())),
        };
        let present = headers
            .get_all(VARY)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .any(|entry| entry == "*" || entry.eq_ignore_ascii_case(token));
        if !present {
            headers.append(VARY, value);
        }
    }

    /// Sends `token` to the client, in a response no shared cache may store. `max_age_ms`
    /// is the time left before the session expires, for a persistent cookie (`None`: a
    /// cookie that ends with the browser session; see [`persists`](Self::persists)).
    pub(crate) fn write_token(
        &self,
        headers: &mut HeaderMap,
        token: &str,
        max_age_ms: Option<u64>,
    ) {
        match self {
            Self::Cookie(config) => {
                let mut cookie = base_cookie(config, token);
                if let Some(ms) = max_age_ms {
                    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
                    cookie.set_max_age(cookie::time::Duration::seconds(secs));
                }
                append_cookie(headers, &cookie);
            }
            Self::Header(name) => {
                if let Ok(value) = HeaderValue::from_str(token) {
                    headers.insert(name.clone(), value);
                }
            }
        }
        no_store(headers);
    }

    /// Tells the client to forget its token: a removal cookie with the original attributes
    /// and `Max-Age=0`, or an empty header.
    pub(crate) fn write_removal(&self, headers: &mut HeaderMap) {
        match self {
            Self::Cookie(config) => {
                let mut cookie = base_cookie(config, "");
                cookie.set_max_age(cookie::time::Duration::ZERO);
                cookie.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
                append_cookie(headers, &cookie);
            }
            Self::Header(name) => {
                headers.insert(name.clone(), HeaderValue::from_static(""));
            }
        }
        no_store(headers);
    }

    /// Whether the client's copy of the token carries its own expiry (a persistent cookie:
    /// the layer's `persistent(true)`, or a session the handler chose to remember), so that
    /// it is sent again whenever the session's deadline moves.
    pub(crate) fn persists(&self, remembered: bool) -> bool {
        matches!(self, Self::Cookie(config) if config.persistent || remembered)
    }
}

/// A response that carries a token (or its removal) must never be stored by a shared cache,
/// which would hand one visitor's session to the next. `no-store` rather than `private,
/// no-cache="Set-Cookie"`: it needs no parsing of other directives, and every cache honours
/// it. A `Cache-Control` the handler set that already says `no-store` is kept; any other is
/// replaced, since all of them are weaker.
fn no_store(headers: &mut HeaderMap) {
    let already = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-store"));
    if !already {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The cookie with the configured attributes, borrowing its parts (nothing is copied until
/// it is formatted).
fn base_cookie<'a>(config: &'a CookieConfig, value: &'a str) -> Cookie<'a> {
    let mut cookie = Cookie::new(config.name(), value);
    cookie.set_secure(config.secure);
    cookie.set_http_only(config.http_only);
    cookie.set_same_site(config.same_site);
    cookie.set_path(config.path.as_str());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.as_str());
    }
    cookie
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    // Formatted once into a buffer of the right size, which becomes the header value
    // without a copy.
    let mut text = String::with_capacity(cookie.value().len() + cookie.name().len() + 128);
    let _ = write!(text, "{cookie}");
    // Names and values are checked when the layer is configured and tokens are URL-safe
    // base64, so the header value is always valid; a failure would only drop the cookie.
    match HeaderValue::try_from(text) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
        }
        Err(error) => tracing::error!(%error, "session cookie is not a valid header value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Transport {
        Transport::Cookie(CookieConfig {
            secure: false,
            ..CookieConfig::default()
        })
    }

    #[test]
    fn reads_the_named_cookie_among_others() {
        let transport = plain();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sessionx=2"));
        headers.append(COOKIE, HeaderValue::from_static("b=3;session=tok; c=4"));
        assert_eq!(
            transport.read_tokens(&headers).tokens,
            [Some("tok"), None, None, None]
        );
        assert_eq!(
            transport.read_tokens(&HeaderMap::new()).tokens,
            [None; MAX_CANDIDATES]
        );
    }

    #[test]
    fn reads_every_cookie_of_the_name_in_order_up_to_the_bound() {
        let transport = plain();
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("session=a; session=b; session=a; session=c"),
        );
        headers.append(COOKIE, HeaderValue::from_static("session=d; session=e"));
        let found = transport.read_tokens(&headers);
        assert_eq!(found.tokens, [Some("a"), Some("b"), Some("c"), Some("d")]);
        assert!(found.overflow, "the fifth is never looked at");
    }

    #[test]
    fn a_non_ascii_cookie_of_another_name_does_not_hide_the_session_cookie() {
        let mut headers = HeaderMap::new();
        let bytes = b"x=\xc3\xa9\xff; session=tok".to_vec();
        headers.append(COOKIE, HeaderValue::from_bytes(&bytes).unwrap());
        assert_eq!(plain().read_tokens(&headers).tokens[0], Some("tok"));
    }

    #[test]
    fn default_name_is_host_prefixed_while_secure() {
        assert_eq!(Transport::default().name(), "__Host-session");
        assert_eq!(plain().name(), "session");
    }

    #[test]
    fn prefix_rules_are_checked() {
        let config = |name: &str, secure, domain: Option<&str>, path: &str| {
            Transport::Cookie(CookieConfig {
                name: Some(name.to_owned()),
                secure,
                domain: domain.map(str::to_owned),
                path: path.to_owned(),
                ..CookieConfig::default()
            })
            .check()
        };
        assert!(config("__Host-s", true, None, "/").is_ok());
        assert!(config("__Secure-s", true, Some("example.com"), "/app").is_ok());
        assert!(config("s", false, Some("example.com"), "/app").is_ok());
        for (result, rule) in [
            (config("__Host-s", false, None, "/"), "must be Secure"),
            (
                config("__Host-s", true, Some("example.com"), "/"),
                "cannot have a Domain",
            ),
            (config("__Host-s", true, None, "/app"), "must have Path=/"),
            (config("__Secure-s", false, None, "/"), "must be Secure"),
            (
                config("__HOST-s", true, Some("example.com"), "/"),
                "cannot have a Domain",
            ),
        ] {
            let message = result.unwrap_err();
            assert!(message.contains(rule), "{message}");
        }
        // The default name follows `secure`, so it never breaks the rules.
        assert!(plain().check().is_ok());
        assert!(Transport::default().check().is_ok());
    }

    #[test]
    fn token_responses_are_not_stored_by_caches_unless_already_stricter() {
        let transport = plain();
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        transport.write_token(&mut headers, "tok", None);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, No-Store"));
        transport.write_removal(&mut headers);
        assert_eq!(headers[CACHE_CONTROL], "private, No-Store");
    }

    #[test]
    fn vary_names_the_token_once() {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        plain().vary(&mut headers);
        plain().vary(&mut headers);
        let vary: Vec<_> = headers.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "cookie"]);
        let header = Transport::Header(HeaderName::from_static("x-session-token"));
        let mut headers = HeaderMap::new();
        header.vary(&mut headers);
        assert_eq!(headers[VARY], "x-session-token");
    }

    #[test]
    fn removal_cookie_repeats_the_attributes() {
        let transport = Transport::Cookie(CookieConfig {
            name: Some("session".to_owned()),
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
