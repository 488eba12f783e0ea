//! Compiles the C shim over libsrtp2 when pkg-config finds it; otherwise
//! sets `libsrtp_missing` so the binding reports how to install it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(libsrtp_missing)");
    println!("cargo::rerun-if-changed=csrc/shim.c");
    match pkg_config::Config::new()
        .atleast_version("2.3")
        .probe("libsrtp2")
    {
        Ok(lib) => {
            let mut build = cc::Build::new();
            build.file("csrc/shim.c").warnings(true);
            for path in &lib.include_paths {
                build.include(path);
            }
            build.compile("switchyard_srtp_shim");
        }
        Err(e) => {
            println!(
                "cargo::warning=libsrtp2 not found ({e}); interop tests will fail. Install libsrtp2-dev and pkg-config."
            );
            println!("cargo::rustc-cfg=libsrtp_missing");
        }
    }
}
