use session_runtime::Databag;

// Every mistake is reported in one go, each at its place.
#[derive(Databag)]
#[databag(version = 0)]
struct Session {
    #[databag(skp)]
    scratch: Vec<u8>,
    #[databag(rename = "v")]
    visits: u32,
    #[databag(rename = "v")]
    views: u32,
}

fn main() {}
