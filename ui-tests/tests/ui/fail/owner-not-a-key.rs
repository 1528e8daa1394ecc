use session_runtime::Databag;

#[derive(Databag)]
struct Account {
    #[databag(owner)]
    score: Option<f64>,
}

fn main() {}
