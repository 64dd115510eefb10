// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: what the message transport needs to authenticate its peers.
 *
 * The cluster key: read from the file cohort.key_file names (default
 * /etc/cohort/cluster.key) when the transport starts, never kept here.
 * cohort.auth=0 turns authentication off (the transport says so in its
 * log). Both are root-writable in /sys/module/cohort/parameters/ and take
 * effect at the next load of the transport.
 *
 * The handshake's MAC: thin wrappers over the crypto API's hmac(sha256),
 * one-shot over a list of buffers (any context, concurrent callers allowed).
 *
 * Frame tags: Poly1305 with a one-time key per frame, the first 32 bytes of
 * the ChaCha20 block 0 under the direction's session key and a nonce made
 * of the frame's sequence number (RFC 8439, section 2.6), from the kernel's
 * crypto library (lib/crypto: chacha, poly1305); incremental, one caller at
 * a time, any context. No cryptography here.
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <crypto/chacha.h>
#include <crypto/hash.h>
#include <crypto/poly1305.h>
#include <linux/cohort.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kernel_read_file.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/unaligned.h>

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "cohort."

static bool auth = true;
module_param(auth, bool, 0644);
MODULE_PARM_DESC(auth, "Authenticate kmsg connections with the cluster key (default 1)");
static char *key_file = "/etc/cohort/cluster.key";
module_param(key_file, charp, 0644);
MODULE_PARM_DESC(key_file, "File holding the cluster key: 64 hex digits");

/**
 * struct cohort_mac - a keyed hmac(sha256)
 * @tfm: the transform, keyed once at creation.
 */
struct cohort_mac {
	struct crypto_shash *tfm;
};

/**
 * struct cohort_tagger - the frame tags of one direction of a connection
 * @key: the direction's session key, as ChaCha20 key words.
 * @poly: state of the tag in progress (cohort_tagger_begin() to
 *	cohort_tagger_finish()).
 */
struct cohort_tagger {
	u32 key[CHACHA_KEY_SIZE / sizeof(u32)];
	struct poly1305_desc_ctx poly;
};

/**
 * cohort_auth_enabled - whether connections are to be authenticated
 *
 * The value of cohort.auth when called: the transport reads it once, when
 * it starts.
 */
bool cohort_auth_enabled(void)
{
	return READ_ONCE(auth);
}
EXPORT_SYMBOL_GPL(cohort_auth_enabled);

/**
 * cohort_read_key_file - read the file that holds the cluster key
 * @buf: where the file's bytes go
 * @size: bytes of @buf; a larger file is refused
 * @path: where the file's name goes (for logs), NUL-terminated
 * @path_size: bytes of @path
 *
 * Reads the whole of the regular file cohort.key_file names (less one
 * trailing newline, which a write to the parameter with echo leaves), as
 * root would. Warns when the file is readable or writable by group or others.
 * The caller parses and then wipes @buf.
 *
 * Return: bytes read, or -ENOENT (no such file), -ENAMETOOLONG (the path
 * does not fit in @path_size bytes; @path then holds its start), -EFBIG
 * (larger than @size), -EINVAL (empty, or not a regular file), another
 * -errno of opening or reading it.
 */
ssize_t cohort_read_key_file(u8 *buf, size_t size, char *path, size_t path_size)
{
	struct file *file;
	void *data = buf;
	umode_t mode;
	ssize_t ret;

	kernel_param_lock(NULL);
	ret = strscpy(path, key_file ? key_file : "", path_size);
	kernel_param_unlock(NULL);
	/* A path cut short would name another file: never open it. */
	if (ret < 0)
		return -ENAMETOOLONG;
	/* A sysfs write with echo (or cohort-node) ends with a newline. */
	if (ret > 0 && path[ret - 1] == '\n')
		path[ret - 1] = '\0';
	if (!path[0])
		return -ENOENT;
	file = filp_open(path, O_RDONLY, 0);
	if (IS_ERR(file))
		return PTR_ERR(file);
	mode = file_inode(file)->i_mode;
	ret = kernel_read_file(file, 0, &data, size, NULL, READING_UNKNOWN);
	fput(file);
	if (ret >= 0 && (mode & 0077))
		pr_warn("the cluster key file %s has mode %04o: anyone who can read it can join the cluster\n",
			path, mode & 07777);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_read_key_file);

/**
 * cohort_mac_new - a hmac(sha256) keyed with @key
 * @key: the key
 * @len: bytes of @key
 *
 * Context: process context.
 * Return: the MAC, or an ERR_PTR: -ENOENT when the kernel has no
 * hmac(sha256), -ENOMEM, -EINVAL for a key the transform refuses.
 */
struct cohort_mac *cohort_mac_new(const u8 *key, unsigned int len)
{
	struct crypto_shash *tfm;
	struct cohort_mac *mac;
	int err;

	tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(tfm))
		return ERR_CAST(tfm);
	err = crypto_shash_setkey(tfm, key, len);
	if (err) {
		crypto_free_shash(tfm);
		return ERR_PTR(err);
	}
	mac = kzalloc(sizeof(*mac), GFP_KERNEL);
	if (!mac) {
		crypto_free_shash(tfm);
		return ERR_PTR(-ENOMEM);
	}
	mac->tfm = tfm;
	return mac;
}
EXPORT_SYMBOL_GPL(cohort_mac_new);

/**
 * cohort_mac_free - free a MAC and its key
 * @mac: the MAC, or NULL
 */
void cohort_mac_free(struct cohort_mac *mac)
{
	if (!mac)
		return;
	crypto_free_shash(mac->tfm);
	kfree_sensitive(mac);
}
EXPORT_SYMBOL_GPL(cohort_mac_free);

/**
 * cohort_mac_digest - the MAC of the concatenation of @parts
 * @mac: the keyed MAC
 * @parts: the buffers, in order
 * @nr: number of @parts
 * @out: COHORT_MAC_LEN bytes for the result
 *
 * Context: any; callers may share @mac.
 * Return: 0, or the transform's -errno.
 */
int cohort_mac_digest(struct cohort_mac *mac, const struct kvec *parts,
		      unsigned int nr, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, mac->tfm);
	unsigned int i;
	int err;

	desc->tfm = mac->tfm;
	err = crypto_shash_init(desc);
	for (i = 0; !err && i < nr; i++)
		err = crypto_shash_update(desc, parts[i].iov_base, parts[i].iov_len);
	if (!err)
		err = crypto_shash_final(desc, out);
	shash_desc_zero(desc);
	return err;
}
EXPORT_SYMBOL_GPL(cohort_mac_digest);

/**
 * cohort_tagger_new - the frame tags of one direction, under @key
 * @key: the direction's session key
 * @len: bytes of @key: COHORT_TAG_KEY_LEN
 *
 * Context: process context.
 * Return: the tagger, or an ERR_PTR: -EINVAL for a key of another length,
 * -ENOMEM.
 */
struct cohort_tagger *cohort_tagger_new(const u8 *key, unsigned int len)
{
	struct cohort_tagger *tagger;
	unsigned int i;

	if (len != CHACHA_KEY_SIZE)
		return ERR_PTR(-EINVAL);
	tagger = kzalloc(sizeof(*tagger), GFP_KERNEL);
	if (!tagger)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < ARRAY_SIZE(tagger->key); i++)
		tagger->key[i] = get_unaligned_le32(key + i * sizeof(u32));
	return tagger;
}
EXPORT_SYMBOL_GPL(cohort_tagger_new);

/**
 * cohort_tagger_free - free a tagger and its key
 * @tagger: the tagger, or NULL
 */
void cohort_tagger_free(struct cohort_tagger *tagger)
{
	kfree_sensitive(tagger);
}
EXPORT_SYMBOL_GPL(cohort_tagger_free);

/**
 * cohort_tagger_begin - start the tag of frame number @seq
 * @tagger: the tagger; its caller serialises begin, update and finish
 * @seq: the frame's sequence number in its direction, never reused
 *
 * The tag's Poly1305 key is the first 32 bytes of ChaCha20 block 0 with
 * nonce 0 (32 bits) || @seq (64 bits, little endian), as RFC 8439 section
 * 2.6 generates a one-time key; a tag begun and not finished is forgotten.
 *
 * Context: any.
 */
void cohort_tagger_begin(struct cohort_tagger *tagger, u64 seq)
{
	u32 state[CHACHA_STATE_WORDS];
	u8 block[CHACHA_BLOCK_SIZE];
	u8 iv[CHACHA_IV_SIZE] = {};

	put_unaligned_le64(seq, iv + 8);
	chacha_init(state, tagger->key, iv);
	chacha20_block(state, block);
	poly1305_init(&tagger->poly, block);
	memzero_explicit(state, sizeof(state));
	memzero_explicit(block, sizeof(block));
}
EXPORT_SYMBOL_GPL(cohort_tagger_begin);

/**
 * cohort_tagger_update - add bytes to the tag begun
 * @tagger: the tagger, begun
 * @data: the bytes
 * @len: bytes of @data
 *
 * Context: any.
 */
void cohort_tagger_update(struct cohort_tagger *tagger, const void *data,
			  size_t len)
{
	poly1305_update(&tagger->poly, data, len);
}
EXPORT_SYMBOL_GPL(cohort_tagger_update);

/**
 * cohort_tagger_finish - end the tag begun
 * @tagger: the tagger, begun
 * @tag: COHORT_TAG_LEN bytes for the tag
 *
 * Context: any.
 */
void cohort_tagger_finish(struct cohort_tagger *tagger, u8 *tag)
{
	poly1305_final(&tagger->poly, tag);
}
EXPORT_SYMBOL_GPL(cohort_tagger_finish);

/**
 * cohort_random_bytes - fill @buf from the kernel's RNG
 * @buf: the buffer
 * @len: bytes of @buf
 */
void cohort_random_bytes(void *buf, size_t len)
{
	get_random_bytes(buf, len);
}
EXPORT_SYMBOL_GPL(cohort_random_bytes);

/**
 * cohort_wipe - zero secret bytes in a way the compiler keeps
 * @buf: the bytes
 * @len: bytes of @buf
 */
void cohort_wipe(void *buf, size_t len)
{
	memzero_explicit(buf, len);
}
EXPORT_SYMBOL_GPL(cohort_wipe);
