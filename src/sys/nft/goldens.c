/* Regenerates goldens.txt with libnftnl, the library `nft` itself encodes through: each
 * message of a batch is decoded into libnftnl's object and encoded again, and the comments
 * vifkit adds are set as nft sets them (a NFTNL_UDATA_*_COMMENT TLV in NFTNL_*_USERDATA).
 * Padding is zeroed. Build and run (Debian: libnftnl-dev, libmnl-dev):
 *
 *   cc -o /tmp/goldens src/sys/nft/goldens.c -lnftnl -lmnl
 *   /tmp/goldens [-c CHAIN_COMMENT] [-t TABLE_COMMENT] HEX   # one batch, re-encoded
 *   /tmp/goldens -g NFPROTO TABLE                             # an NFT_MSG_GETTABLE request
 *
 * -c puts CHAIN_COMMENT on every NEWCHAIN, -t TABLE_COMMENT on the last NEWTABLE. With
 * neither, the output must equal the input: that checks the round trip itself. The batch
 * frames keep the input's flags (nftnl-rs, which made the first goldens, set NLM_F_ACK). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>

static char out[1 << 20];
static size_t used;

static void die(const char *what) {
	fprintf(stderr, "goldens: %s\n", what);
	exit(1);
}

static void commit(struct nlmsghdr *nlh) {
	used += MNL_ALIGN(nlh->nlmsg_len);
}

static void comment_udata(uint8_t type, const char *comment, const void **data, uint32_t *len) {
	struct nftnl_udata_buf *udbuf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	if (!udbuf || !nftnl_udata_put_strz(udbuf, type, comment))
		die("udata");
	*data = nftnl_udata_buf_data(udbuf);
	*len = nftnl_udata_buf_len(udbuf);
}

static void hex_out(void) {
	for (size_t i = 0; i < used; i++)
		printf("%02x", (unsigned char)out[i]);
	printf("\n");
}

int main(int argc, char **argv) {
	const char *chain_comment = NULL, *table_comment = NULL;
	int opt, get_family = -1;
	while ((opt = getopt(argc, argv, "c:t:g:")) != -1) {
		switch (opt) {
		case 'c': chain_comment = optarg; break;
		case 't': table_comment = optarg; break;
		case 'g': get_family = atoi(optarg); break;
		default: die("usage");
		}
	}
	if (optind != argc - 1)
		die("usage");
	memset(out, 0, sizeof(out));
	if (get_family >= 0) {
		struct nftnl_table *t = nftnl_table_alloc();
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, argv[optind]);
		struct nlmsghdr *nlh = nftnl_table_nlmsg_build_hdr(out, NFT_MSG_GETTABLE, get_family, NLM_F_ACK, 1);
		nftnl_table_nlmsg_build_payload(nlh, t);
		commit(nlh);
		hex_out();
		return 0;
	}

	const char *hex = argv[optind];
	size_t n = strlen(hex) / 2;
	unsigned char *in = calloc(n + 4, 1);
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &in[i]);

	/* The index of the last NEWTABLE, for -t. */
	int last_table = -1, index = 0;
	for (size_t at = 0; at < n; index++) {
		const struct nlmsghdr *nlh = (const void *)(in + at);
		if (nlh->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE))
			last_table = index;
		at += MNL_ALIGN(nlh->nlmsg_len);
	}

	index = 0;
	for (size_t at = 0; at < n; index++) {
		const struct nlmsghdr *in_nlh = (const void *)(in + at);
		at += MNL_ALIGN(in_nlh->nlmsg_len);
		uint16_t type = in_nlh->nlmsg_type;
		uint16_t flags = in_nlh->nlmsg_flags & ~NLM_F_REQUEST;
		uint32_t seq = in_nlh->nlmsg_seq;
		uint16_t family = ((const struct nfgenmsg *)mnl_nlmsg_get_payload(in_nlh))->nfgen_family;
		struct nlmsghdr *nlh;
		const void *ud;
		uint32_t udlen;
		if (type == NFNL_MSG_BATCH_BEGIN || type == NFNL_MSG_BATCH_END) {
			nlh = type == NFNL_MSG_BATCH_BEGIN ? nftnl_batch_begin(out + used, seq)
							   : nftnl_batch_end(out + used, seq);
			/* nftnl-rs asked for acknowledgements of the frames too. */
			nlh->nlmsg_flags |= flags;
		} else if (type >> 8 != NFNL_SUBSYS_NFTABLES) {
			die("not nf_tables");
		} else {
			uint16_t msg = type & 0xff;
			switch (msg) {
			case NFT_MSG_NEWTABLE: case NFT_MSG_DELTABLE: case NFT_MSG_GETTABLE: {
				struct nftnl_table *t = nftnl_table_alloc();
				if (nftnl_table_nlmsg_parse(in_nlh, t) < 0)
					die("table");
				if (table_comment && index == last_table) {
					comment_udata(NFTNL_UDATA_TABLE_COMMENT, table_comment, &ud, &udlen);
					nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, ud, udlen);
				}
				nlh = nftnl_table_nlmsg_build_hdr(out + used, msg, family, flags, seq);
				nftnl_table_nlmsg_build_payload(nlh, t);
				break;
			}
			case NFT_MSG_NEWCHAIN: case NFT_MSG_DELCHAIN: case NFT_MSG_GETCHAIN: {
				struct nftnl_chain *c = nftnl_chain_alloc();
				if (nftnl_chain_nlmsg_parse(in_nlh, c) < 0)
					die("chain");
				if (chain_comment && msg == NFT_MSG_NEWCHAIN) {
					comment_udata(NFTNL_UDATA_CHAIN_COMMENT, chain_comment, &ud, &udlen);
					nftnl_chain_set_data(c, NFTNL_CHAIN_USERDATA, ud, udlen);
				}
				nlh = nftnl_chain_nlmsg_build_hdr(out + used, msg, family, flags, seq);
				nftnl_chain_nlmsg_build_payload(nlh, c);
				break;
			}
			case NFT_MSG_NEWRULE: {
				struct nftnl_rule *r = nftnl_rule_alloc();
				if (nftnl_rule_nlmsg_parse(in_nlh, r) < 0)
					die("rule");
				nlh = nftnl_rule_nlmsg_build_hdr(out + used, msg, family, flags, seq);
				nftnl_rule_nlmsg_build_payload(nlh, r);
				break;
			}
			default:
				die("message type");
			}
		}
		commit(nlh);
	}
	hex_out();
	return 0;
}
