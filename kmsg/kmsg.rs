// SPDX-License-Identifier: GPL-2.0

//! kmsg: Cohort's kernel-to-kernel messaging.
//!
//! The only way Cohort nodes talk to each other. At this stage it owns the
//! hub's message slot and answers membership queries; the TCP transport,
//! heartbeats and request/reply arrive with the messaging work, until
//! which no other node is ever reported up.

use kernel::cohort::{self, MsgOps, MsgSlot, Registration};
use kernel::c_str;
use kernel::prelude::*;

module! {
    type: Kmsg,
    name: "kmsg",
    author: "Cohort Developers",
    description: "Cohort kernel-to-kernel messaging",
    license: "GPL",
}

struct Kmsg {
    _msg: Registration<MsgSlot<Transport>>,
}

/// The message transport as the hub sees it.
struct Transport;

#[vtable]
impl MsgOps for Transport {
    fn peer_online(_node: u32) -> bool {
        // No connection to any peer exists yet.
        false
    }
}

impl kernel::Module for Kmsg {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let msg = Registration::register(c_str!("kmsg"))?;
        pr_info!(
            "node {} of {}; no peer transport yet, peers report offline\n",
            cohort::node_id(),
            cohort::nr_nodes()
        );
        Ok(Kmsg { _msg: msg })
    }
}

impl Drop for Kmsg {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
