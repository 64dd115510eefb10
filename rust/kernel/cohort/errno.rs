// SPDX-License-Identifier: GPL-2.0

//! Error codes Cohort needs that `kernel::error::code` lacks in 6.12.

#![allow(non_snake_case)]

use crate::{bindings, error::Error};

macro_rules! errno {
    ($($name:ident: $doc:literal),* $(,)?) => {
        $(
            #[doc = $doc]
            pub fn $name() -> Error {
                Error::from_errno(-(bindings::$name as i32))
            }
        )*
    };
}

errno! {
    ECONNREFUSED: "Connection refused.",
    ECONNRESET: "Connection reset by peer.",
    ENAMETOOLONG: "File name too long.",
    EOPNOTSUPP: "Operation not supported.",
    EHOSTDOWN: "Host is down.",
    EIDRM: "Identifier removed.",
    EMSGSIZE: "Message too long.",
    EOVERFLOW: "Value too large for defined data type.",
    ENOTCONN: "Transport endpoint is not connected.",
    EKEYREJECTED: "Key was rejected by service.",
    ENOKEY: "Required key not available.",
    ENOLCK: "No record locks available (or a remote locking protocol failed).",
    EPROTO: "Protocol error.",
    EPROTONOSUPPORT: "Protocol not supported.",
    ESHUTDOWN: "Cannot send after transport endpoint shutdown.",
    ETIMEDOUT: "Connection timed out.",
}
