//! The checked-in header is what cbindgen makes of the crate today; set
//! SWITCHYARD_UPDATE_HEADER=1 to rewrite it after changing the API.

use std::path::PathBuf;

#[test]
fn header_is_current() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = crate_dir.join("include/switchyard.h");
    if std::env::var_os("SWITCHYARD_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "ffi/include/switchyard.h is stale: run SWITCHYARD_UPDATE_HEADER=1 cargo test -p switchyard-ffi --test header"
    );
}
