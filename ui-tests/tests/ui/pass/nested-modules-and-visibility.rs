//! The handle follows the struct's visibility and each accessor the field's, and the
#![deny(warnings)]
//! derive needs no imports beyond the derive itself.

mod sessions {
    #[derive(session_runtime::Databag)]
    pub struct Cart {
        pub items: Vec<u64>,
        pub(crate) coupon: Option<String>,
        secret: u8,
    }

    impl CartHandle {
        pub fn bump_secret(&mut self) {
            // Private fields are writable inside their module.
            self.set_secret(self.secret + 1);
        }
    }
}

use session_runtime::Databag as _;

fn main() {
    let mut cart = sessions::CartHandle::new(sessions::Cart::defaults());
    cart.items_mut().push(7);
    cart.set_coupon(Some("WINTER".to_owned()));
    cart.bump_secret();
    assert_eq!(cart.items, [7]);
    assert_eq!(cart.changed_fields().count(), 3);
}
