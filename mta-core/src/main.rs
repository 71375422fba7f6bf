//! The `mta` binary.

fn main() {
    eprintln!("mta: the server is not built yet (see the open issues)");
    std::process::exit(2);
}
