//! `ring` implementation (AES-GCM only: ring has no AES-CTR).

super::less_safe_key_gcm!(ring);
