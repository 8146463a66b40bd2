//! The console's own state: a hash to verify against for unknown users, and the key that
//! binds login forms to this server. (Login throttling is `service::logins`, in the store.)

pub struct Console {
    login_key: [u8; 32],
}

impl Console {
    pub fn new(main_key: &crate::domain::crypto::MainKey) -> Console {
        Console {
            login_key: main_key.derive("hookbox login form"),
        }
    }

    /// The login form's hidden value for the anti-forgery cookie `token`: a MAC under a
    /// server key, so that whoever can plant the cookie still cannot make a matching form.
    pub(super) fn login_form_value(&self, token: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.login_key)
            .expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}
