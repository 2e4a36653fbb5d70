//! Edge→origin request signatures: any identity header, client network, client agent, signature
//! and body is refused unless it is the MAC of exactly these parts; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::signing::{
    is_valid_client_agent, is_valid_client_network, Identity, RequestSigner, SignedParts,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(6, '\n');
    let (identity, client_network, client_agent, signature, path, body) = (
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or("/internal/me"),
        fields.next().unwrap_or(""),
    );
    let signer = RequestSigner::new(b"fuzz-origin-signing-secret-0123456789ab").unwrap();
    let Some(identity) = Identity::parse(identity) else {
        return;
    };
    assert_eq!(Identity::parse(&identity.to_header()), Some(identity));
    // The origin refuses any other network or agent before checking the MAC.
    if !is_valid_client_network(client_network) || !is_valid_client_agent(client_agent) {
        return;
    }
    let parts = SignedParts {
        method: "POST",
        path_and_query: path,
        timestamp: 1_800_000_000,
        identity,
        body: body.as_bytes(),
        client_network,
        client_agent,
    };
    let genuine = signer.sign(&parts);
    assert!(signer.verify(&parts, &genuine, 1_800_000_000).is_ok());
    if signature != genuine {
        assert!(signer.verify(&parts, signature, 1_800_000_000).is_err());
    }
});
