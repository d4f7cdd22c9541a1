//! A bridge port's own settings: VLANs (`bridge vlan`), port flags (`bridge link set`) and
//! static FDB entries (`bridge fdb add ... static`), each one request.

use anyhow::Result;
use rtnetlink::packet_route::link::BridgeVlanInfoFlags;
use rtnetlink::packet_route::neighbour::{NeighbourAttribute, NeighbourState};
use rtnetlink::{LinkBridgePort, LinkBridgeVlan};

use super::{Netlink, os_error};
use crate::types::mac::MacAddr;
use crate::types::port::PortOptions;

impl Netlink {
    /// Gives the port exactly `options`' VLANs, flags and pinned MAC; safe to repeat.
    pub async fn set_port_options(&self, index: u32, options: &PortOptions) -> Result<()> {
        let vlans = &options.vlans;
        if !vlans.is_empty() {
            // Every VID goes first, the default VID 1 included (as Proxmox strips 1-4094):
            // what remains is only what was asked. Absent VIDs are no error.
            let strip = LinkBridgeVlan::new(index)
                .vlan_range_start(1, BridgeVlanInfoFlags::empty())
                .vlan_range_end(4094, BridgeVlanInfoFlags::empty())
                .build();
            self.handle
                .link()
                .del_with_message(strip)
                .execute()
                .await
                .map_err(os_error)?;
            let mut add = LinkBridgeVlan::new(index);
            if let Some(vid) = vlans.access {
                let untagged = BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged;
                add = add.vlan(vid.get(), untagged);
            }
            for vid in &vlans.trunks {
                if Some(*vid) != vlans.access {
                    add = add.vlan(vid.get(), BridgeVlanInfoFlags::empty());
                }
            }
            for vid in &vlans.untagged {
                add = add.vlan(vid.get(), BridgeVlanInfoFlags::Untagged);
            }
            self.set(add.build()).await?;
        }
        let flags = LinkBridgePort::new(index)
            .isolated(options.isolated)
            .learning(options.pinned_mac.is_none())
            .hairpin(options.hairpin)
            .build();
        self.handle
            .link()
            .set_port(flags)
            .execute()
            .await
            .map_err(os_error)?;
        if let Some(mac) = options.pinned_mac {
            // On a VLAN-aware bridge the FDB is per VLAN: the guest's frames are on its access VLAN.
            let vid = options.vlans.access.map(|vid| vid.get());
            self.add_static_fdb(index, mac, vid).await?;
        }
        Ok(())
    }

    /// `bridge fdb replace MAC dev PORT master static [vlan VID]`.
    async fn add_static_fdb(&self, index: u32, mac: MacAddr, vid: Option<u16>) -> Result<()> {
        let mut request = self
            .handle
            .neighbours()
            .add_bridge(index, &mac.0)
            .state(NeighbourState::Noarp)
            .replace();
        if let Some(vid) = vid {
            let attributes = &mut request.message_mut().attributes;
            attributes.push(NeighbourAttribute::Vlan(vid));
        }
        request.execute().await.map_err(os_error)
    }
}
