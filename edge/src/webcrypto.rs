//! Ed25519 signature checks by the platform (`crypto.subtle`, BoringSSL in workerd) instead of
//! Rust compiled to Wasm: the same answer for a fraction of the CPU. Each public key is imported
//! once per isolate (the configuration, and so the key set, is also read once per isolate) and
//! kept as a `CryptoKey`.
//!
//! HS256 stays in Rust (`VerifyingKeys::check`): an HMAC-SHA256 over a few hundred bytes costs
//! less than the promise round trip to WebCrypto. If the platform cannot import a key or throws,
//! the Rust check answers instead, so a runtime without Ed25519 in WebCrypto still verifies; the
//! isolate remembers the failure (logged once) and checks in Rust from then on, rather than
//! retrying and logging on every request.
//!
//! Both paths run the same attack matrix: `shared::token`'s tests in Rust, and the end-to-end
//! scenario `forged_and_misused_tokens_are_refused` through the Worker under workerd.

use std::cell::{Cell, RefCell};

use js_sys::{Object, Promise, Reflect, Uint8Array};
use shared::keys::{Algorithm, VerifyingKeys};
use shared::token::{TokenError, Unverified, Verified};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        key_data: &Uint8Array,
        algorithm: &JsValue,
        extractable: bool,
        usages: &js_sys::Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;
}

/// An Ed25519 signature is exactly this long; anything else is refused before WebCrypto.
const ED25519_SIGNATURE_BYTES: usize = 64;

thread_local! {
    /// Set when WebCrypto failed in this isolate: its Ed25519 checks are Rust's from then on.
    static PLATFORM_FAILED: Cell<bool> = const { Cell::new(false) };
    /// The imported keys, by index in the configured key set.
    static KEYS: RefCell<Vec<Option<JsValue>>> = const { RefCell::new(Vec::new()) };
    /// `{name: "Ed25519"}`, built once.
    static ED25519: JsValue = {
        let algorithm = Object::new();
        let _ = Reflect::set(&algorithm, &"name".into(), &"Ed25519".into());
        algorithm.into()
    };
}

/// Checks `token`'s signature with `keys`: WebCrypto for Ed25519, Rust otherwise or when the
/// platform fails.
pub async fn check<'t>(
    keys: &VerifyingKeys,
    token: Unverified<'t>,
    request_id: &str,
) -> Result<Verified<'t>, TokenError> {
    if keys.algorithm() != Algorithm::EdDSA {
        return keys.check(token);
    }
    if token.signature().len() != ED25519_SIGNATURE_BYTES {
        return token.checked(false);
    }
    if PLATFORM_FAILED.with(Cell::get) {
        return keys.check(token);
    }
    match platform_verify(keys, &token).await {
        Ok(valid) => token.checked(valid),
        Err(error) => {
            PLATFORM_FAILED.with(|failed| failed.set(true));
            let message = "WebCrypto Ed25519 failed; this isolate checks in Rust from now on";
            crate::log::error(request_id, message, &crate::js_error_text(&error));
            keys.check(token)
        }
    }
}

async fn platform_verify(keys: &VerifyingKeys, token: &Unverified<'_>) -> Result<bool, JsValue> {
    let key = imported(keys, token.key()).await?;
    let promise = ED25519.with(|algorithm| {
        subtle_verify(algorithm, &key, token.signature(), token.signing_input())
    })?;
    Ok(JsFuture::from(promise).await?.as_bool() == Some(true))
}

/// The `CryptoKey` of key `index`, imported on first use.
async fn imported(keys: &VerifyingKeys, index: usize) -> Result<JsValue, JsValue> {
    if let Some(key) = KEYS.with(|k| k.borrow().get(index).cloned().flatten()) {
        return Ok(key);
    }
    let raw = keys
        .key_material(index)
        .ok_or_else(|| JsValue::from_str("no such key"))?;
    let usages = js_sys::Array::of1(&"verify".into());
    let promise = ED25519
        .with(|algorithm| import_key("raw", &Uint8Array::from(raw), algorithm, false, &usages))?;
    let key = JsFuture::from(promise).await?;
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() <= index {
            k.resize(index + 1, None);
        }
        k[index] = Some(key.clone());
    });
    Ok(key)
}
