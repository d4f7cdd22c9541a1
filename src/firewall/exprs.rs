//! The nf_tables objects the `nftnl` crate does not cover, built through libnftnl itself:
//! payload loads at any offset, a verdict map keyed by interface name, its elements and
//! the lookup that jumps through it.

use std::ffi::{CStr, CString, c_void};
use std::os::raw::c_char;
use std::ptr::NonNull;

use nftnl::expr::Expression;
use nftnl::{MsgType, NlMsg, ProtoFamily, Rule};
use nftnl_sys::{self as sys, libc};

use super::rules::Load;

/// The kernel compares interface names as IFNAMSIZ bytes, NUL-padded.
const IFNAMSIZ: usize = 16;
/// nft's `ifname` data type, so `nft list` prints the keys as names.
const TYPE_IFNAME: u32 = 41;
/// nft's user data for a set: TLV `NFTNL_UDATA_SET_KEYBYTEORDER` (0), 4 bytes, host order
/// (1). Without it nft cannot tell a name from a number and prints every key as "".
const KEY_BYTEORDER_HOST: [u8; 6] = {
    let order = 1u32.to_ne_bytes();
    [0, 4, order[0], order[1], order[2], order[3]]
};

fn alloc<T>(ptr: *mut T) -> NonNull<T> {
    NonNull::new(ptr).expect("libnftnl allocation failed")
}

/// Loads a header field into register 1.
pub struct Payload(pub Load);

impl Expression for Payload {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let (base, offset, len) = match self.0 {
            Load::LinkLayer { offset, len } => (libc::NFT_PAYLOAD_LL_HEADER, offset, len),
            Load::Network { offset, len } => (libc::NFT_PAYLOAD_NETWORK_HEADER, offset, len),
            Load::Transport { offset, len } => (libc::NFT_PAYLOAD_TRANSPORT_HEADER, offset, len),
            Load::L4Proto => unreachable!("meta l4proto is a meta expression"),
        };
        let expr = alloc(unsafe { sys::nftnl_expr_alloc(c"payload".as_ptr()) });
        unsafe {
            let e = expr.as_ptr();
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_PAYLOAD_BASE as u16, base as u32);
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_PAYLOAD_OFFSET as u16, offset);
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_PAYLOAD_LEN as u16, len);
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_PAYLOAD_DREG as u16,
                libc::NFT_REG_1 as u32,
            );
        }
        expr
    }
}

/// `vmap @map`: looks register 1 up in a verdict map and takes the element's verdict.
pub struct VerdictLookup<'a>(pub &'a CStr);

impl Expression for VerdictLookup<'_> {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let expr = alloc(unsafe { sys::nftnl_expr_alloc(c"lookup".as_ptr()) });
        unsafe {
            let e = expr.as_ptr();
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_LOOKUP_SREG as u16,
                libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_LOOKUP_DREG as u16,
                libc::NFT_REG_VERDICT as u32,
            );
            sys::nftnl_expr_set_str(e, sys::NFTNL_EXPR_LOOKUP_SET as u16, self.0.as_ptr());
        }
        expr
    }
}

/// A named map from interface name to verdict (`map NAME { type ifname : verdict }`).
pub struct VerdictMap {
    set: NonNull<sys::nftnl_set>,
}

impl VerdictMap {
    pub fn new(table: &CStr, name: &CStr, family: ProtoFamily) -> VerdictMap {
        let set = alloc(unsafe { sys::nftnl_set_alloc() });
        unsafe {
            let s = set.as_ptr();
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_FAMILY as u16, family as u32);
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_NAME as u16, name.as_ptr());
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_ID as u16, 1);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_FLAGS as u16, libc::NFT_SET_MAP as u32);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_KEY_TYPE as u16, TYPE_IFNAME);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_KEY_LEN as u16, IFNAMSIZ as u32);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_DATA_TYPE as u16, libc::NFT_DATA_VERDICT);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_DATA_LEN as u16, 0);
            sys::nftnl_set_set_data(
                s,
                sys::NFTNL_SET_USERDATA as u16,
                KEY_BYTEORDER_HOST.as_ptr().cast::<c_void>(),
                KEY_BYTEORDER_HOST.len() as u32,
            );
        }
        VerdictMap { set }
    }
}

unsafe impl NlMsg for VerdictMap {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        let kind = match msg_type {
            MsgType::Add => libc::NFT_MSG_NEWSET,
            MsgType::Del => libc::NFT_MSG_DELSET,
        };
        let family =
            unsafe { sys::nftnl_set_get_u32(self.set.as_ptr(), sys::NFTNL_SET_FAMILY as u16) };
        // No NLM_F_EXCL: adding the map that is already there is a no-op.
        let flags = libc::NLM_F_CREATE | libc::NLM_F_ACK;
        unsafe {
            let header = sys::nftnl_nlmsg_build_hdr(
                buf.cast::<c_char>(),
                kind as u16,
                family as u16,
                flags as u16,
                seq,
            );
            sys::nftnl_set_nlmsg_build_payload(header, self.set.as_ptr());
        }
    }
}

impl Drop for VerdictMap {
    fn drop(&mut self) {
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}

/// One `name : jump chain` element of a `VerdictMap`. Added without NLM_F_EXCL, so adding
/// the element that is already there (same chain) is a no-op.
pub struct JumpElement {
    set: NonNull<sys::nftnl_set>,
}

impl JumpElement {
    pub fn new(
        table: &CStr,
        map: &CStr,
        family: ProtoFamily,
        key: &str,
        chain: &CStr,
    ) -> JumpElement {
        let mut padded = [0u8; IFNAMSIZ];
        let bytes = key.as_bytes();
        padded[..bytes.len().min(IFNAMSIZ - 1)]
            .copy_from_slice(&bytes[..bytes.len().min(IFNAMSIZ - 1)]);
        let set = alloc(unsafe { sys::nftnl_set_alloc() });
        unsafe {
            let s = set.as_ptr();
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_FAMILY as u16, family as u32);
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_NAME as u16, map.as_ptr());
            let elem = alloc(sys::nftnl_set_elem_alloc());
            let e = elem.as_ptr();
            sys::nftnl_set_elem_set(
                e,
                sys::NFTNL_SET_ELEM_KEY as u16,
                padded.as_ptr().cast::<c_void>(),
                IFNAMSIZ as u32,
            );
            sys::nftnl_set_elem_set_u32(
                e,
                sys::NFTNL_SET_ELEM_VERDICT as u16,
                libc::NFT_JUMP as u32,
            );
            sys::nftnl_set_elem_set_str(e, sys::NFTNL_SET_ELEM_CHAIN as u16, chain.as_ptr());
            sys::nftnl_set_elem_add(s, e);
        }
        JumpElement { set }
    }
}

unsafe impl NlMsg for JumpElement {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        let kind = match msg_type {
            MsgType::Add => libc::NFT_MSG_NEWSETELEM,
            MsgType::Del => libc::NFT_MSG_DELSETELEM,
        };
        let family =
            unsafe { sys::nftnl_set_get_u32(self.set.as_ptr(), sys::NFTNL_SET_FAMILY as u16) };
        let flags = match msg_type {
            MsgType::Add => libc::NLM_F_CREATE | libc::NLM_F_ACK,
            MsgType::Del => libc::NLM_F_ACK,
        };
        unsafe {
            let header = sys::nftnl_nlmsg_build_hdr(
                buf.cast::<c_char>(),
                kind as u16,
                family as u16,
                flags as u16,
                seq,
            );
            sys::nftnl_set_elems_nlmsg_build_payload(header, self.set.as_ptr());
        }
    }
}

impl Drop for JumpElement {
    fn drop(&mut self) {
        // Frees the element list with the set.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}

/// A C string for an nft object name; the names come from validated interface names.
pub fn c_name(name: &str) -> CString {
    CString::new(name).expect("nft object names hold no NUL")
}
