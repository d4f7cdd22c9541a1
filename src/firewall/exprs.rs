//! What the `nftnl` crate does not cover, built through libnftnl itself: payload loads at
//! any offset, and a lookup of one chain.

use std::ffi::CString;
use std::os::raw::c_char;
use std::ptr::NonNull;

use nftnl::expr::Expression;
use nftnl::{ProtoFamily, Rule};
use nftnl_sys::{self as sys, libc};

use super::rules::Load;

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

/// A C string for an nft object name; the names come from validated interface names.
pub fn c_name(name: &str) -> CString {
    CString::new(name).expect("nft object names hold no NUL")
}

/// `NFT_MSG_GETCHAIN` for one chain: answered with the chain, or ENOENT.
pub struct ChainQuery {
    pub family: ProtoFamily,
    pub table: CString,
    pub chain: CString,
}

impl ChainQuery {
    /// Writes the request at the start of `buffer`; returns its length.
    pub fn write(&self, buffer: &mut [u8], seq: u32) -> usize {
        let chain = alloc(unsafe { sys::nftnl_chain_alloc() });
        unsafe {
            let c = chain.as_ptr();
            sys::nftnl_chain_set_str(c, sys::NFTNL_CHAIN_TABLE as u16, self.table.as_ptr());
            sys::nftnl_chain_set_str(c, sys::NFTNL_CHAIN_NAME as u16, self.chain.as_ptr());
            let header = sys::nftnl_nlmsg_build_hdr(
                buffer.as_mut_ptr().cast::<c_char>(),
                libc::NFT_MSG_GETCHAIN as u16,
                self.family as u16,
                libc::NLM_F_ACK as u16,
                seq,
            );
            sys::nftnl_chain_nlmsg_build_payload(header, c);
            let len = (*header).nlmsg_len as usize;
            sys::nftnl_chain_free(c);
            // Netlink messages follow each other at 4-byte boundaries.
            len.next_multiple_of(4)
        }
    }
}
