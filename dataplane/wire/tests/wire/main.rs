//! Integration tests of switchyard-wire: RFC vectors, property tests and
//! garbage resistance. One module per scenario.

mod garbage;
mod roundtrip;
mod stun_rfc5769;

/// Reads `name hex` lines from a vector file under tests/vectors.
pub fn vectors(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, hex) = l.split_once(' ').expect("name and hex");
            (
                name.to_string(),
                hex::decode(hex.trim()).expect("valid hex"),
            )
        })
        .collect()
}

pub fn vector(file: &str, name: &str) -> Vec<u8> {
    vectors(file)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .expect("vector present")
}
