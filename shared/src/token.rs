//! JWT claims and their issue and verification, one verification function per token kind.
//!
//! Claim names follow SimpleJWT (`token_type`, `user_id`, `jti`, `iat`, `exp`) so existing
//! clients that read them keep working; `ver` (the user's token version, bumped by a password
//! reset) and `role` are ours. Each kind is only accepted where that kind is expected
//! (RFC 8725 §3.12): an access token is never a refresh token and neither is a reset token.
//! Time is passed in (`now`, Unix seconds): the checks are pure and testable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode_header, encode, Header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{Algorithm, KeyError, SigningKey, VerifyingKeys};

/// Anything longer is refused before parsing (a real token of ours is ~350 bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Accepted clock difference between the issuer and the verifier for `iat`/`nbf`.
pub const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
    PasswordReset,
}

/// A bearer on an authenticated route.
pub const ACCESS: &[TokenKind] = &[TokenKind::Access];
/// The body of `jwt/refresh/` and `logout/`.
pub const REFRESH: &[TokenKind] = &[TokenKind::Refresh];
/// `jwt/verify/` accepts access and refresh tokens, as SimpleJWT's `UntypedToken` does.
pub const SESSION: &[TokenKind] = &[TokenKind::Access, TokenKind::Refresh];

/// Claims of access and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenKind,
    pub user_id: i64,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub ver: i32,
    pub role: String,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The session (refresh family) an access token was issued in, so the origin can tell the
    /// caller's own session from the others (`sessions/`, `users/set_password/`). Absent in
    /// tokens issued before sessions existed and in refresh tokens (their `jti` names the row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Claims of a password-reset token. The edge mints it after a correct OTP, when it knows the
/// email but not the user id; the origin checks `jti` is used once and `iat` is after the
/// user's last password change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetClaims {
    pub token_type: TokenKind,
    pub email: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why a token was refused. Callers answer every variant with the same 401 body; the variant
/// is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("unsupported critical header")]
    CriticalHeader,
    #[error("bad signature")]
    Signature,
    #[error("wrong issuer or audience")]
    IssuerOrAudience,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("wrong token kind")]
    WrongKind,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Who a token is about, and the facts it carries about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: i64,
    pub token_version: i32,
    pub role: String,
}

/// `iss` and `aud` every token of this deployment carries and every verifier demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub issuer: String,
    pub audience: String,
}

/// Signs access and refresh tokens (origin only: it holds the private key).
pub struct TokenIssuer {
    key: SigningKey,
    audience: Audience,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, audience: Audience) -> Self {
        Self { key, audience }
    }

    /// The claims of a new token of `kind` for `subject`, valid from `now` for `ttl` seconds.
    pub fn claims(
        &self,
        kind: TokenKind,
        subject: &Subject,
        jti: String,
        now: i64,
        ttl: i64,
    ) -> Claims {
        Claims {
            token_type: kind,
            user_id: subject.user_id,
            jti,
            iat: now,
            exp: now + ttl,
            ver: subject.token_version,
            role: subject.role.clone(),
            iss: self.audience.issuer.clone(),
            aud: self.audience.audience.clone(),
            nbf: None,
            sid: None,
        }
    }

    /// Encodes claims. Ed25519 and HMAC signatures are deterministic, so the same claims give
    /// the same token (the refresh grace window relies on this).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        crate::jwt_crypto::install();
        let mut header = Header::new(self.key.algorithm.to_jwt());
        header.kid = self.key.kid.clone();
        encode(&header, claims, &self.key.key).map_err(|e| TokenError::Signing(e.to_string()))
    }
}

/// Verifies tokens with a pinned algorithm and our own key set.
pub struct TokenVerifier {
    keys: VerifyingKeys,
    audience: Audience,
}

impl TokenVerifier {
    pub fn new(keys: VerifyingKeys, audience: Audience) -> Self {
        Self { keys, audience }
    }

    pub fn keys(&self) -> &VerifyingKeys {
        &self.keys
    }

    /// A Bearer token on an authenticated route.
    pub fn access(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        self.of_kinds(token, now, ACCESS)
    }

    /// The body of `jwt/refresh/` and `logout/`.
    pub fn refresh(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        self.of_kinds(token, now, REFRESH)
    }

    /// `jwt/verify/` accepts access and refresh tokens, as SimpleJWT's `UntypedToken` does,
    /// and nothing else.
    pub fn session(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        self.of_kinds(token, now, SESSION)
    }

    fn of_kinds(&self, token: &str, now: i64, kinds: &[TokenKind]) -> Result<Claims, TokenError> {
        let verified = self.keys.check(self.keys.parse(token)?)?;
        self.accept(verified, now, kinds)
    }

    /// The claims of a token whose signature was checked (here or by the platform): issuer,
    /// audience, times and kind. `kinds` is [`ACCESS`], [`REFRESH`] or [`SESSION`].
    pub fn accept(
        &self,
        token: Verified<'_>,
        now: i64,
        kinds: &[TokenKind],
    ) -> Result<Claims, TokenError> {
        let claims: Claims = read_claims(token, &self.audience)?;
        check_times(claims.iat, claims.nbf, claims.exp, now)?;
        if !kinds.contains(&claims.token_type) {
            return Err(TokenError::WrongKind);
        }
        Ok(claims)
    }
}

/// Password-reset tokens: HS256 with their own secret, shared by the edge (which mints them
/// after a correct OTP) and the origin (which consumes them). A separate key means no
/// access/refresh key can ever mint one, and vice versa.
pub struct ResetTokens {
    signing: SigningKey,
    verifying: VerifyingKeys,
    audience: Audience,
}

impl ResetTokens {
    pub fn new(secret: &[u8], audience: Audience) -> Result<Self, KeyError> {
        Self::rotating(&[secret], audience)
    }

    /// During a rotation: the first secret signs, every one verifies, so a token minted under
    /// the previous secret works until it expires.
    pub fn rotating(secrets: &[&[u8]], audience: Audience) -> Result<Self, KeyError> {
        let current = secrets.first().ok_or(KeyError::Empty)?;
        Ok(Self {
            signing: SigningKey::hs256(current)?,
            verifying: VerifyingKeys::hs256_all(secrets)?,
            audience,
        })
    }

    pub fn issue(
        &self,
        email: &str,
        jti: String,
        now: i64,
        ttl: i64,
    ) -> Result<String, TokenError> {
        let claims = ResetClaims {
            token_type: TokenKind::PasswordReset,
            email: email.to_owned(),
            jti,
            iat: now,
            exp: now + ttl,
            iss: self.audience.issuer.clone(),
            aud: self.audience.audience.clone(),
            nbf: None,
        };
        crate::jwt_crypto::install();
        encode(
            &Header::new(Algorithm::HS256.to_jwt()),
            &claims,
            &self.signing.key,
        )
        .map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<ResetClaims, TokenError> {
        let claims: ResetClaims = verify_signed(token, &self.verifying, &self.audience)?;
        check_times(claims.iat, claims.nbf, claims.exp, now)?;
        if claims.token_type != TokenKind::PasswordReset {
            return Err(TokenError::WrongKind);
        }
        Ok(claims)
    }
}

/// A token whose header passed every check and whose key is one of ours; its signature is not
/// checked yet. [`VerifyingKeys::check`] checks it in Rust; a runtime with its own
/// cryptography (the Worker's WebCrypto) checks [`Unverified::signing_input`] and
/// [`Unverified::signature`] with [`VerifyingKeys::key_material`] and reports with
/// [`Unverified::checked`]. Only a [`Verified`] token's claims are ever read.
#[derive(Debug)]
pub struct Unverified<'t> {
    key: usize,
    signing_input: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

/// A token whose signature was checked with the key its header named.
#[derive(Debug)]
pub struct Verified<'t> {
    payload: &'t str,
}

impl<'t> Unverified<'t> {
    /// Which of the verifier's keys must have signed it (see [`VerifyingKeys::key_material`]).
    pub fn key(&self) -> usize {
        self.key
    }

    /// `header.payload`, the signed bytes.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature (any length: checking it is the verifier's job).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The outcome of a check made elsewhere (WebCrypto's `verify` answer).
    pub fn checked(self, signature_valid: bool) -> Result<Verified<'t>, TokenError> {
        if signature_valid {
            Ok(Verified {
                payload: self.payload,
            })
        } else {
            Err(TokenError::Signature)
        }
    }
}

impl VerifyingKeys {
    /// Shape, size and header checks and the key lookup, before any signature work. The header's
    /// `alg` is only compared with the pinned one, never used to choose how to verify.
    pub fn parse<'t>(&self, token: &'t str) -> Result<Unverified<'t>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(_), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        // Exactly three parts, so this reads the first.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm.to_jwt() {
            return Err(TokenError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let key = self
            .position(header.kid.as_deref())
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Unverified {
            key,
            signing_input: &token[..header_and_payload_len(token)],
            payload,
            signature,
        })
    }

    /// The signature check in Rust (`jwt_crypto`: Ed25519 strict, HMAC constant-time). HS256
    /// tries each secret of a rotation in turn; Ed25519 only the key the `kid` named.
    pub fn check<'t>(&self, token: Unverified<'t>) -> Result<Verified<'t>, TokenError> {
        let candidates = match self.algorithm {
            Algorithm::HS256 => &self.keys[..],
            Algorithm::EdDSA => &self.keys[token.key..=token.key],
        };
        let valid = candidates.iter().any(|(_, key)| {
            crate::jwt_crypto::verify(
                self.algorithm,
                key,
                token.signing_input(),
                token.signature(),
            )
        });
        token.checked(valid)
    }
}

/// The length of `header.payload` in a token already split into exactly three parts.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// `iss` and `aud` of a claims type, compared with the deployment's.
trait Registered {
    fn issuer_and_audience(&self) -> (&str, &str);
}

impl Registered for Claims {
    fn issuer_and_audience(&self) -> (&str, &str) {
        (&self.iss, &self.aud)
    }
}

impl Registered for ResetClaims {
    fn issuer_and_audience(&self) -> (&str, &str) {
        (&self.iss, &self.aud)
    }
}

/// The claims of a verified token, refused unless `iss` and `aud` are the deployment's.
fn read_claims<T: DeserializeOwned + Registered>(
    token: Verified<'_>,
    audience: &Audience,
) -> Result<T, TokenError> {
    let json = URL_SAFE_NO_PAD
        .decode(token.payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: T = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.issuer_and_audience() != (audience.issuer.as_str(), audience.audience.as_str()) {
        return Err(TokenError::IssuerOrAudience);
    }
    Ok(claims)
}

/// Parse, signature in Rust, claims: the whole check where no platform cryptography is used.
fn verify_signed<T: DeserializeOwned + Registered>(
    token: &str,
    keys: &VerifyingKeys,
    audience: &Audience,
) -> Result<T, TokenError> {
    let verified = keys.check(keys.parse(token)?)?;
    read_claims(verified, audience)
}

/// SimpleJWT/PyJWT semantics: valid while `now < exp`; `nbf` and `iat` may not be in the
/// future beyond the allowed clock skew.
pub fn check_times(iat: i64, nbf: Option<i64>, exp: i64, now: i64) -> Result<(), TokenError> {
    if now >= exp {
        return Err(TokenError::Expired);
    }
    if iat > now + CLOCK_SKEW_SECS || nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Ed25519PrivateKey, Jwks};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    fn audience() -> Audience {
        Audience {
            issuer: "auth-api".into(),
            audience: "auth-api-clients".into(),
        }
    }

    fn subject() -> Subject {
        Subject {
            user_id: 42,
            token_version: 3,
            role: "user".into(),
        }
    }

    fn ed_pair(seed: u8) -> (TokenIssuer, TokenVerifier) {
        let private = Ed25519PrivateKey::from_seed([seed; 32]);
        let jwks = Jwks {
            keys: vec![private.public_jwk()],
        };
        (
            TokenIssuer::new(SigningKey::ed25519(&private), audience()),
            TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience()),
        )
    }

    fn hs_pair(secret: &[u8]) -> (TokenIssuer, TokenVerifier) {
        (
            TokenIssuer::new(SigningKey::hs256(secret).unwrap(), audience()),
            TokenVerifier::new(VerifyingKeys::hs256(secret).unwrap(), audience()),
        )
    }

    fn mint(issuer: &TokenIssuer, kind: TokenKind) -> String {
        issuer
            .sign(&issuer.claims(kind, &subject(), "j1".into(), NOW, 300))
            .unwrap()
    }

    fn access_claims_json(issuer: &TokenIssuer) -> serde_json::Value {
        let claims = issuer.claims(TokenKind::Access, &subject(), "j".into(), NOW, 300);
        serde_json::to_value(claims).unwrap()
    }

    /// Builds `header.payload.signature` by hand for attacks the library would not produce.
    fn forge(header: &str, payload: &serde_json::Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn each_kind_round_trips_in_both_algorithms() {
        for (issuer, verifier) in [ed_pair(1), hs_pair(&[9; 32])] {
            let access = mint(&issuer, TokenKind::Access);
            let claims = verifier.access(&access, NOW).unwrap();
            assert_eq!(
                (claims.user_id, claims.ver, claims.role.as_str()),
                (42, 3, "user")
            );
            assert_eq!(claims.exp, NOW + 300);
            let refresh = mint(&issuer, TokenKind::Refresh);
            assert_eq!(
                verifier.refresh(&refresh, NOW).unwrap().token_type,
                TokenKind::Refresh
            );
            assert!(verifier.session(&access, NOW).is_ok());
            assert!(verifier.session(&refresh, NOW).is_ok());
        }
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let (issuer, verifier) = ed_pair(1);
        let access = mint(&issuer, TokenKind::Access);
        let refresh = mint(&issuer, TokenKind::Refresh);
        let reset_kind = mint(&issuer, TokenKind::PasswordReset);
        assert_eq!(verifier.refresh(&access, NOW), Err(TokenError::WrongKind));
        assert_eq!(verifier.access(&refresh, NOW), Err(TokenError::WrongKind));
        assert_eq!(
            verifier.access(&reset_kind, NOW),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            verifier.session(&reset_kind, NOW),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn signing_is_deterministic() {
        let (issuer, _) = ed_pair(1);
        assert_eq!(
            mint(&issuer, TokenKind::Refresh),
            mint(&issuer, TokenKind::Refresh)
        );
    }

    #[test]
    fn expiry_and_future_tokens() {
        let (issuer, verifier) = ed_pair(1);
        let token = mint(&issuer, TokenKind::Access);
        assert!(verifier.access(&token, NOW + 299).is_ok());
        assert_eq!(verifier.access(&token, NOW + 300), Err(TokenError::Expired));
        assert_eq!(
            verifier.access(&token, NOW - CLOCK_SKEW_SECS - 1),
            Err(TokenError::NotYetValid)
        );
        let mut claims = issuer.claims(TokenKind::Access, &subject(), "j".into(), NOW, 300);
        claims.nbf = Some(NOW + 120);
        let token = issuer.sign(&claims).unwrap();
        assert_eq!(verifier.access(&token, NOW), Err(TokenError::NotYetValid));
    }

    #[test]
    fn other_key_issuer_or_audience_refused() {
        let (issuer, _) = ed_pair(1);
        let (_, other_verifier) = ed_pair(2);
        let token = mint(&issuer, TokenKind::Access);
        // Another key has another thumbprint, so its kid is unknown here.
        assert_eq!(
            other_verifier.access(&token, NOW),
            Err(TokenError::UnknownKey)
        );

        let (_, verifier) = ed_pair(1);
        let wrong_iss = TokenIssuer::new(
            SigningKey::ed25519(&Ed25519PrivateKey::from_seed([1; 32])),
            Audience {
                issuer: "evil".into(),
                audience: "auth-api-clients".into(),
            },
        );
        assert_eq!(
            verifier.access(&mint(&wrong_iss, TokenKind::Access), NOW),
            Err(TokenError::IssuerOrAudience)
        );
        let wrong_aud = TokenIssuer::new(
            SigningKey::ed25519(&Ed25519PrivateKey::from_seed([1; 32])),
            Audience {
                issuer: "auth-api".into(),
                audience: "other".into(),
            },
        );
        assert_eq!(
            verifier.access(&mint(&wrong_aud, TokenKind::Access), NOW),
            Err(TokenError::IssuerOrAudience)
        );

        let (hs_issuer, _) = hs_pair(&[1; 32]);
        let (_, hs_verifier) = hs_pair(&[2; 32]);
        assert_eq!(
            hs_verifier.access(&mint(&hs_issuer, TokenKind::Access), NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn alg_none_and_algorithm_confusion_refused() {
        let (issuer, verifier) = ed_pair(1);
        let claims = access_claims_json(&issuer);
        let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, b"");
        assert_eq!(verifier.access(&none, NOW), Err(TokenError::Malformed));
        // HS256 "signed" with the Ed25519 public key as the HMAC secret.
        let public = Ed25519PrivateKey::from_seed([1; 32]).public_key();
        let confused = TokenIssuer::new(
            SigningKey::hs256(&[&public[..], &public[..]].concat()).unwrap(),
            audience(),
        );
        assert_eq!(
            verifier.access(&mint(&confused, TokenKind::Access), NOW),
            Err(TokenError::Algorithm)
        );
        // And an EdDSA token to an HS256 verifier.
        let (_, hs_verifier) = hs_pair(&[1; 32]);
        assert_eq!(
            hs_verifier.access(&mint(&issuer, TokenKind::Access), NOW),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn header_tricks_refused_or_ignored() {
        let (issuer, verifier) = ed_pair(1);
        let claims = access_claims_json(&issuer);
        let injected = forge(
            r#"{"alg":"EdDSA","kid":"../../etc/passwd"}"#,
            &claims,
            &[0; 64],
        );
        assert_eq!(verifier.access(&injected, NOW), Err(TokenError::UnknownKey));
        let crit = forge(r#"{"alg":"EdDSA","crit":["exp"]}"#, &claims, &[0; 64]);
        assert_eq!(verifier.access(&crit, NOW), Err(TokenError::CriticalHeader));
        // jku pointing elsewhere changes nothing: the signature is still checked with our key.
        let jku = forge(
            r#"{"alg":"EdDSA","jku":"https://evil.example/jwks.json"}"#,
            &claims,
            &[0; 64],
        );
        assert_eq!(verifier.access(&jku, NOW), Err(TokenError::Signature));
    }

    #[test]
    fn tampered_truncated_and_oversized_refused() {
        let (issuer, verifier) = ed_pair(1);
        let token = mint(&issuer, TokenKind::Access);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["role"] = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        assert_eq!(
            verifier.access(&parts.join("."), NOW),
            Err(TokenError::Signature)
        );
        for cut in 1..6 {
            let truncated = &token[..token.len() - cut];
            assert!(matches!(
                verifier.access(truncated, NOW),
                Err(TokenError::Signature | TokenError::Malformed)
            ));
        }
        assert_eq!(
            verifier.access(&token[..40], NOW),
            Err(TokenError::Malformed)
        );
        assert_eq!(verifier.access("", NOW), Err(TokenError::Malformed));
        assert_eq!(
            verifier.access(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW),
            Err(TokenError::TooLarge)
        );
    }

    #[test]
    fn reset_tokens_have_their_own_key_and_kind() {
        let resets = ResetTokens::new(&[5; 32], audience()).unwrap();
        let token = resets
            .issue("a@example.com", "r1".into(), NOW, 900)
            .unwrap();
        let claims = resets.verify(&token, NOW + 899).unwrap();
        assert_eq!(
            (claims.email.as_str(), claims.jti.as_str()),
            ("a@example.com", "r1")
        );
        assert_eq!(resets.verify(&token, NOW + 900), Err(TokenError::Expired));
        // An HS256 session token signed with the reset secret is the wrong kind for a reset...
        let (issuer, verifier) = hs_pair(&[5; 32]);
        let access = mint(&issuer, TokenKind::Access);
        assert!(resets.verify(&access, NOW).is_err());
        // ...and a reset token is never a session token.
        assert!(verifier.session(&token, NOW).is_err());
        let other = ResetTokens::new(&[6; 32], audience()).unwrap();
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Signature));
    }

    #[test]
    fn hs256_secret_lists_sign_with_the_first_and_verify_with_all() {
        let (old, new, other) = ([5; 32], [6; 32], [7; 32]);
        let (old_issuer, _) = hs_pair(&old);
        let rotating =
            TokenVerifier::new(VerifyingKeys::hs256_all(&[&new, &old]).unwrap(), audience());
        let by_old = mint(&old_issuer, TokenKind::Access);
        assert!(rotating.access(&by_old, NOW).is_ok());
        let (other_issuer, _) = hs_pair(&other);
        let forged = mint(&other_issuer, TokenKind::Access);
        assert_eq!(rotating.access(&forged, NOW), Err(TokenError::Signature));
        assert!(VerifyingKeys::hs256_all(&[]).is_err());
        assert!(VerifyingKeys::hs256_all(&[&new, &[1; 31]]).is_err());
        // Reset tokens: minted under the old secret, consumed by a rotating origin.
        let old_resets = ResetTokens::new(&old, audience()).unwrap();
        let token = old_resets
            .issue("a@example.com", "r1".into(), NOW, 900)
            .unwrap();
        let rotating = ResetTokens::rotating(&[&new, &old], audience()).unwrap();
        assert!(rotating.verify(&token, NOW).is_ok());
        let fresh = rotating
            .issue("a@example.com", "r2".into(), NOW, 900)
            .unwrap();
        assert!(ResetTokens::new(&new, audience())
            .unwrap()
            .verify(&fresh, NOW)
            .is_ok());
        assert!(old_resets.verify(&fresh, NOW).is_err());
    }

    #[test]
    fn rotation_old_and_new_keys_verify() {
        let old = Ed25519PrivateKey::from_seed([1; 32]);
        let new = Ed25519PrivateKey::from_seed([2; 32]);
        let jwks = Jwks {
            keys: vec![new.public_jwk(), old.public_jwk()],
        };
        let verifier = TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience());
        for key in [&old, &new] {
            let issuer = TokenIssuer::new(SigningKey::ed25519(key), audience());
            assert!(verifier
                .access(&mint(&issuer, TokenKind::Access), NOW)
                .is_ok());
        }
    }

    /// What a platform engine (the Worker's WebCrypto) is given: the key material, the signed
    /// bytes and the signature. Checking them elsewhere and reporting with `checked` gives the
    /// Rust path's answers; a forged signature reported as invalid is refused.
    #[test]
    fn a_signature_checked_elsewhere_gives_the_same_answers() {
        use ed25519_dalek::{Signature, VerifyingKey};
        let (issuer, verifier) = ed_pair(1);
        let genuine = mint(&issuer, TokenKind::Access);
        let (other, _) = ed_pair(2);
        let mut foreign_sig = mint(&other, TokenKind::Access);
        foreign_sig.replace_range(
            ..genuine.rfind('.').unwrap(),
            &genuine[..genuine.rfind('.').unwrap()],
        );
        let platform = |token: &str| -> Result<Claims, TokenError> {
            let keys = verifier.keys();
            let unverified = keys.parse(token)?;
            let raw: [u8; 32] = keys
                .key_material(unverified.key())
                .unwrap()
                .try_into()
                .unwrap();
            let valid = Signature::from_slice(unverified.signature()).is_ok_and(|sig| {
                VerifyingKey::from_bytes(&raw)
                    .unwrap()
                    .verify_strict(unverified.signing_input(), &sig)
                    .is_ok()
            });
            verifier.accept(unverified.checked(valid)?, NOW, ACCESS)
        };
        for token in [genuine.as_str(), foreign_sig.as_str(), "a.b.c", ""] {
            assert_eq!(platform(token), verifier.access(token, NOW), "{token}");
        }
        assert!(platform(&genuine).is_ok());
        assert_eq!(platform(&foreign_sig), Err(TokenError::Signature));
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_verify_or_panic(s in "\\PC{0,600}") {
            let (_, verifier) = ed_pair(1);
            prop_assert!(verifier.session(&s, NOW).is_err());
        }

        #[test]
        fn claims_round_trip(user_id in 1i64..i64::MAX, ver in 0i32..i32::MAX, ttl in 1i64..100_000,
                             role in "(user|admin)", jti in "[a-f0-9]{32}") {
            let (issuer, verifier) = hs_pair(&[3; 32]);
            let s = Subject { user_id, token_version: ver, role };
            let claims = issuer.claims(TokenKind::Refresh, &s, jti, NOW, ttl);
            let token = issuer.sign(&claims).unwrap();
            prop_assert_eq!(verifier.refresh(&token, NOW).unwrap(), claims);
        }

        #[test]
        fn any_single_byte_flip_is_refused(pos in 0usize..200, byte in 0u8..128) {
            let (issuer, verifier) = ed_pair(1);
            let token = mint(&issuer, TokenKind::Access);
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(tampered) = String::from_utf8(bytes) {
                // A flip in base64url padding bits can decode to the same bytes; only then may it pass.
                if let Ok(claims) = verifier.access(&tampered, NOW) {
                    prop_assert_eq!(claims, verifier.access(&token, NOW).unwrap());
                }
            }
        }
    }
}
