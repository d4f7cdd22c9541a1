#!/bin/sh
# Starting a KVM guest whose NIC is plugged by vifkit's qemu-ifup and unplugged by
# qemu-ifdown. Install them as /etc/qemu-ifup and /etc/qemu-ifdown (qemu's defaults) or
# name them explicitly as here. The bridge comes from VIFKIT_BRIDGE, a rule in
# /etc/vifkit/vifkit.conf, or the default-route bridge; see vifkit.conf.example.
exec env VIFKIT_BRIDGE=br0 qemu-system-x86_64 -enable-kvm -m 1024 \
    -drive file=guest.qcow2,if=virtio \
    -netdev tap,id=n0,ifname=tap-guest1,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56

# libvirt, <interface type='ethernet'>: libvirt runs the script with only the tap name and
# only CAP_NET_ADMIN, which is all qemu-ifup needs:
#   <interface type='ethernet'>
#     <target dev='tap-guest1'/>
#     <script path='/etc/qemu-ifup'/>
#     <model type='virtio'/>
#   </interface>
