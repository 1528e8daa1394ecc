//! What a session remembers of the client that started it, for listing an owner's sessions
//! (opt-in): the device (its User-Agent, truncated) and the client's address (the
//! connection's peer, or a forwarded address only behind proxies the app names).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::request::Parts;

use crate::schema::{keys, Internal};

/// The longest device label kept, in bytes (cut at a character boundary).
pub const MAX_DEVICE_BYTES: usize = 160;

/// Where the layer takes a session's client address from
/// ([`SessionLayer::track_client_address`](crate::SessionLayer::track_client_address)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAddress {
    /// The connection's peer, as axum records it when the app is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (no address is kept
    /// otherwise). Right for an app that faces clients directly.
    Peer,
    /// Behind reverse proxies: when the peer is one of these addresses, the client is the
    /// right-most `X-Forwarded-For` entry that is not one of them (each proxy appends the
    /// address it saw; entries left of the first untrusted one may be forged by the
    /// client). When the peer is not a trusted proxy, the peer. A forwarded header is never
    /// believed from anyone else.
    BehindProxies(Vec<IpAddr>),
}

/// The client of one request, as far as the layer was asked to remember it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Client {
    device: Option<String>,
    address: Option<IpAddr>,
}

/// What a layer keeps of clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tracking {
    pub(crate) devices: bool,
    pub(crate) address: Option<ClientAddress>,
}

impl Tracking {
    /// Whether anything is kept (when not, requests are not looked at).
    pub(crate) fn is_on(&self) -> bool {
        self.devices || self.address.is_some()
    }

    /// What to keep of the client sending `parts`; `None` when nothing is tracked.
    pub(crate) fn client(&self, parts: &Parts) -> Option<Client> {
        if !self.is_on() {
            return None;
        }
        let device = self
            .devices
            .then(|| parts.headers.get(http::header::USER_AGENT))
            .flatten()
            // Not only visible ASCII: a User-Agent with other bytes is kept, lossily.
            .map(|agent| String::from_utf8_lossy(agent.as_bytes()))
            .map(|agent| truncate(agent.trim(), MAX_DEVICE_BYTES).to_owned())
            .filter(|agent| !agent.is_empty());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_canonical());
        let address = match &self.address {
            None => None,
            Some(ClientAddress::Peer) => peer,
            Some(ClientAddress::BehindProxies(trusted)) => {
                peer.map(|peer| behind_proxies(peer, trusted, &parts.headers).unwrap_or(peer))
            }
        };
        Some(Client { device, address })
    }
}

/// The client behind trusted proxies: the right-most forwarded address that is not a
/// trusted proxy, when the peer is one.
fn behind_proxies(peer: IpAddr, trusted: &[IpAddr], headers: &http::HeaderMap) -> Option<IpAddr> {
    if !trusted.contains(&peer) {
        return None;
    }
    let mut last_trusted = None;
    // Several headers are one list, in order.
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for entry in entries.iter().rev() {
        let address = entry.trim().parse::<IpAddr>().ok()?.to_canonical();
        if !trusted.contains(&address) {
            return Some(address);
        }
        last_trusted = Some(address);
    }
    last_trusted
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Writes `client` into the session's internal fields (when a session is stored under a
/// new id: created, renewed, reset).
pub(crate) fn stamp(internal: &mut Internal, client: &Client) {
    if let Some(device) = &client.device {
        internal.set_str(keys::DEVICE, Some(device));
    }
    if let Some(address) = client.address {
        internal.set_str(keys::ADDRESS, Some(&address.to_string()));
    }
}

/// The device and address a stored session remembers.
pub(crate) fn remembered(internal: &Internal) -> (Option<String>, Option<IpAddr>) {
    let device = internal.get_str(keys::DEVICE).map(str::to_owned);
    let address = internal
        .get_str(keys::ADDRESS)
        .and_then(|text| text.parse().ok());
    (device, address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        let peer: SocketAddr = peer.parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn nothing_is_looked_at_unless_asked() {
        let tracking = Tracking::default();
        assert_eq!(
            tracking.client(&parts("1.2.3.4:5", &[("user-agent", "x")])),
            None
        );
    }

    #[test]
    fn the_device_is_the_user_agent_cut_at_a_character_boundary() {
        let tracking = Tracking {
            devices: true,
            address: None,
        };
        let long = "é".repeat(200);
        let client = tracking
            .client(&parts("1.2.3.4:5", &[("user-agent", &long)]))
            .unwrap();
        let device = client.device.unwrap();
        assert!(device.len() <= MAX_DEVICE_BYTES && device.len() >= MAX_DEVICE_BYTES - 1);
        assert!(device.chars().all(|c| c == 'é'));
        assert_eq!(client.address, None, "no address unless asked");
    }

    #[test]
    fn the_peer_address_is_kept_and_forwarded_headers_ignored() {
        let tracking = Tracking {
            devices: false,
            address: Some(ClientAddress::Peer),
        };
        let client = tracking
            .client(&parts("1.2.3.4:5", &[("x-forwarded-for", "9.9.9.9")]))
            .unwrap();
        assert_eq!(client.address, Some(ip("1.2.3.4")));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let tracking = Tracking {
            devices: false,
            address: Some(ClientAddress::BehindProxies(vec![
                ip("10.0.0.1"),
                ip("10.0.0.2"),
            ])),
        };
        // Through two trusted proxies: the right-most untrusted entry; the client's own
        // forged entry on the left is ignored.
        let client = tracking
            .client(&parts(
                "10.0.0.1:80",
                &[("x-forwarded-for", "6.6.6.6, 7.7.7.7, 10.0.0.2")],
            ))
            .unwrap();
        assert_eq!(client.address, Some(ip("7.7.7.7")));
        // From an untrusted peer, the header is not believed.
        let client = tracking
            .client(&parts("8.8.8.8:80", &[("x-forwarded-for", "6.6.6.6")]))
            .unwrap();
        assert_eq!(client.address, Some(ip("8.8.8.8")));
        // A garbage entry stops the walk: the peer stands.
        let client = tracking
            .client(&parts("10.0.0.1:80", &[("x-forwarded-for", "nonsense")]))
            .unwrap();
        assert_eq!(client.address, Some(ip("10.0.0.1")));
    }

    #[test]
    fn stamping_and_reading_back() {
        let mut internal = Internal::new();
        let client = Client {
            device: Some("Firefox".into()),
            address: Some(ip("::1")),
        };
        stamp(&mut internal, &client);
        assert_eq!(
            remembered(&internal),
            (Some("Firefox".into()), Some(ip("::1")))
        );
    }
}
