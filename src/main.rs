fn main() {
    std::process::exit(poolwatch::cli::main());
}
