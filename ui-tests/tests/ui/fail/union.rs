use session_runtime::Databag;

#[derive(Databag)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
