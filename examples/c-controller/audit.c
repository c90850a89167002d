/*
 * audit.c -- the hash-chained audit log (R-AUDIT), with SHA-256 from OpenSSL's libcrypto.
 *
 * Each entry's hash is SHA-256 over the canonical JSON text of [prev, seq, at, kind, data]
 * (controller/audit.py, "The canonical form": no spaces, sorted keys, the reference's float
 * layout); prev is the hash of the entry before it, and the first entry's prev is the genesis
 * value, SHA-256 of "bwcsim-audit:<camera id>". Changing, dropping, inserting or reordering
 * any entry breaks the chain; the bench reads the log with the node protocol's "audit"
 * request and verifies it. Entries are stored as the text the protocol carries, so reading
 * the log costs one copy.
 */
#include "audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct audit_log {
    char **entries; /* each [seq,at,"kind",data,"prev","hash"] as canonical JSON */
    size_t n, cap;
    char head[65];
};

/* SHA-256 (hex) of data. The digest is looked up once: with OpenSSL 3 a digest named at each
 * call is fetched again each time, which costs more than hashing an entry. */
static void sha256_hex(const char *data, size_t len, char out[65])
{
    static const EVP_MD *sha256;
    static EVP_MD_CTX *ctx;
    if (!ctx) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
        sha256 = EVP_sha256();
#endif
        ctx = EVP_MD_CTX_new();
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!sha256 || !ctx || EVP_DigestInit_ex(ctx, sha256, NULL) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, md, &md_len) != 1 ||
        md_len != 32) {
        fputs("bwc: SHA-256 failed\n", stderr);
        abort();
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

audit_log *audit_new(const char *camera_id)
{
    audit_log *log = xrealloc(NULL, sizeof *log);
    memset(log, 0, sizeof *log);
    char *seed = xprintf("bwcsim-audit:%s", camera_id);
    sha256_hex(seed, strlen(seed), log->head);
    free(seed);
    return log;
}

void audit_free(audit_log *log)
{
    if (!log)
        return;
    for (size_t i = 0; i < log->n; i++)
        free(log->entries[i]);
    free(log->entries);
    free(log);
}

void audit_append(audit_log *log, double at, const char *kind, char *data)
{
    char at_text[40];
    format_double(at, at_text);
    /* What the hash covers: ["prev",seq,at,"kind",data] */
    strbuf sb = {0};
    sb_put(&sb, "[\"", 2);
    sb_puts(&sb, log->head);
    char seq[32];
    snprintf(seq, sizeof seq, "\",%zu,", log->n);
    sb_puts(&sb, seq);
    sb_puts(&sb, at_text);
    sb_put(&sb, ",", 1);
    sb_json_string(&sb, kind, strlen(kind));
    sb_put(&sb, ",", 1);
    sb_puts(&sb, data);
    sb_put(&sb, "]", 1);
    char hash[65];
    sha256_hex(sb.s, sb.n, hash);
    /* What the protocol carries: [seq,at,"kind",data,"prev","hash"] */
    sb.n = 0;
    sb_put(&sb, "[", 1);
    sb_puts(&sb, seq + 2); /* "N," */
    sb_puts(&sb, at_text);
    sb_put(&sb, ",", 1);
    sb_json_string(&sb, kind, strlen(kind));
    sb_put(&sb, ",", 1);
    sb_puts(&sb, data);
    sb_put(&sb, ",\"", 2);
    sb_puts(&sb, log->head);
    sb_put(&sb, "\",\"", 3);
    sb_puts(&sb, hash);
    sb_put(&sb, "\"]", 2);
    char *entry = sb.s;
    free(data);
    if (log->n == log->cap) {
        log->cap = log->cap ? 2 * log->cap : 32;
        log->entries = xrealloc(log->entries, log->cap * sizeof *log->entries);
    }
    log->entries[log->n++] = entry;
    memcpy(log->head, hash, sizeof hash);
}

size_t audit_len(const audit_log *log) { return log->n; }

const char *audit_head(const audit_log *log) { return log->head; }

char *audit_entries_json(const audit_log *log, size_t first)
{
    strbuf sb = {0};
    sb_put(&sb, "[", 1);
    for (size_t i = first; i < log->n; i++) {
        if (i > first)
            sb_put(&sb, ",", 1);
        sb_puts(&sb, log->entries[i]);
    }
    sb_put(&sb, "]", 1);
    return sb.s;
}

/* ------------------------------------------------------------------ entry data */

static void add(jobject *o, const char *key, char *value)
{
    if (o->n == sizeof o->f / sizeof o->f[0]) {
        fputs("bwc: too many fields in an audit entry\n", stderr);
        abort();
    }
    o->f[o->n].key = key;
    o->f[o->n++].value = value;
}

static char *string_text(const char *s, size_t len)
{
    strbuf sb = {0};
    sb_json_string(&sb, s, len);
    return sb.s;
}

void jo_str(jobject *o, const char *key, const char *s)
{
    add(o, key, s ? string_text(s, strlen(s)) : xstrdup("null"));
}

void jo_id(jobject *o, const char *key, const msgid_t *id)
{
    if (id->kind == ID_STR)
        add(o, key, string_text(id->str, id->len));
    else if (id->kind == ID_INT)
        add(o, key, xprintf("%lld", id->num));
    else
        add(o, key, xstrdup("null"));
}

void jo_num(jobject *o, const char *key, double v)
{
    char text[40];
    format_double(v, text);
    add(o, key, xstrdup(text));
}

void jo_int(jobject *o, const char *key, long long v) { add(o, key, xprintf("%lld", v)); }

void jo_bool(jobject *o, const char *key, bool v) { add(o, key, xstrdup(v ? "true" : "false")); }

void jo_strs(jobject *o, const char *key, char *const *v, size_t n)
{
    strbuf sb = {0};
    sb_put(&sb, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_put(&sb, ",", 1);
        sb_json_string(&sb, v[i], strlen(v[i]));
    }
    sb_put(&sb, "]", 1);
    add(o, key, sb.s);
}

char *jo_finish(jobject *o)
{
    /* Keys sorted by code point: for UTF-8, byte order is code point order. A handful of
     * fields: insertion sort. */
    for (size_t i = 1; i < o->n; i++)
        for (size_t j = i; j > 0 && strcmp(o->f[j - 1].key, o->f[j].key) > 0; j--) {
            const char *k = o->f[j].key;
            char *v = o->f[j].value;
            o->f[j] = o->f[j - 1];
            o->f[j - 1].key = k;
            o->f[j - 1].value = v;
        }
    strbuf sb = {0};
    sb_put(&sb, "{", 1);
    for (size_t i = 0; i < o->n; i++) {
        if (i)
            sb_put(&sb, ",", 1);
        sb_json_string(&sb, o->f[i].key, strlen(o->f[i].key));
        sb_put(&sb, ":", 1);
        sb_puts(&sb, o->f[i].value);
        free(o->f[i].value);
    }
    sb_put(&sb, "}", 1);
    o->n = 0;
    return sb.s;
}
