/*
 * codec.c -- bytes <-> the camera's messages, with the refusal words of bwcsim SPEC 4 (R-BAD).
 *
 * An inbound payload is checked in the order that gives the most useful NACK: size, UTF-8,
 * JSON syntax, an object, its "id", its "type", then the fields of that type. Unknown extra
 * fields are ignored; a repeated key counts with its last value (as most JSON parsers do).
 * Nothing here allocates more than the payload is worth, and nothing aborts on bad input.
 *
 * cJSON builds the tree; json_doc keeps beside it the text of every string and number token,
 * because the reference reads numbers by how they are written (7 is an integer, 7.0 is not,
 * 9007199254740993 is exact) and strings whole (a \u0000 included). Ids and sequence numbers
 * are read from those tokens. Outbound JSON is written as the reference writes it: floats in
 * its shortest layout (format_double), strings escaped as little as JSON needs.
 */
#define _GNU_SOURCE /* memmem */

#include "codec.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers shared by all */

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("bwc: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xrealloc(NULL, n);
    memcpy(d, s, n);
    return d;
}

char *xprintf(const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *s = xrealloc(NULL, (size_t)n + 1);
    if ((size_t)n < sizeof small) {
        memcpy(s, small, (size_t)n + 1);
        return s;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void sv_push(strvec *sv, const char *s)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? 2 * sv->cap : 4;
        sv->v = xrealloc(sv->v, sv->cap * sizeof *sv->v);
    }
    sv->v[sv->n++] = xstrdup(s);
}

long sv_find(const strvec *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return (long)i;
    return -1;
}

void sv_remove_at(strvec *sv, size_t i)
{
    free(sv->v[i]);
    memmove(sv->v + i, sv->v + i + 1, (sv->n - i - 1) * sizeof *sv->v);
    sv->n--;
}

void sv_clear(strvec *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    sv->n = 0;
}

void outbox_add(outbox_t *out, const char *topic, char *payload, bool retain)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 8;
        out->items = xrealloc(out->items, out->cap * sizeof *out->items);
    }
    out->items[out->n++] = (publication){xstrdup(topic), payload, retain};
}

void outbox_clear(outbox_t *out)
{
    for (size_t i = 0; i < out->n; i++) {
        free(out->items[i].topic);
        free(out->items[i].payload);
    }
    out->n = 0;
}

const activity_rule *policy_rule(const policy_t *policy, const char *activity)
{
    for (size_t i = 0; i < policy->n_activities; i++)
        if (strcmp(policy->activities[i].name, activity) == 0)
            return &policy->activities[i];
    return NULL;
}

bool policy_lists(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

const char *state_name(cam_state state)
{
    static const char *const names[] = {"docked", "standby", "pre_buffer", "recording", "off"};
    return names[state];
}

/* ------------------------------------------------------------------ base64 (RFC 4648) */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const unsigned char *s, size_t n)
{
    char *out = xrealloc(NULL, 4 * ((n + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = B64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Decodes into a new NUL-terminated buffer; NULL on malformed input. */
unsigned char *b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    if (len % 4)
        return NULL;
    unsigned char *out = xrealloc(NULL, len / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *p = s[i + j] ? strchr(B64, s[i + j]) : NULL;
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                pad++;
                v <<= 6;
            } else if (p && !pad) {
                v = v << 6 | (unsigned)(p - B64);
            } else {
                free(out);
                return NULL;
            }
        }
        out[k++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[k++] = (unsigned char)(v >> 8 & 255);
        if (pad < 1)
            out[k++] = (unsigned char)(v & 255);
    }
    out[k] = '\0';
    *n = k;
    return out;
}

/* base64url as trust files and signatures write it (RFC 4648 section 5, padding optional).
 * Lenient in the way of Python's decoder: characters outside the alphabet are skipped, and
 * '+' and '/' are read as well as '-' and '_'. NULL when what is left cannot be base64. */
unsigned char *b64url_decode(const char *s, size_t *n)
{
    size_t len = strlen(s), k = 0, bits = 0;
    unsigned v = 0;
    unsigned char *out = xrealloc(NULL, len / 4 * 3 + 3);
    size_t chars = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        char c = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
        const char *p = c ? strchr(B64, c) : NULL;
        if (!p)
            continue;
        v = v << 6 | (unsigned)(p - B64);
        bits += 6;
        chars++;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(v >> bits & 255);
        }
    }
    if (chars % 4 == 1) {
        free(out);
        return NULL;
    }
    *n = k;
    return out;
}

/* ------------------------------------------------------------------ ids */

msgid_t msgid_copy(const msgid_t *id)
{
    msgid_t c = *id;
    if (id->kind == ID_STR) {
        c.str = xrealloc(NULL, id->len + 1);
        memcpy(c.str, id->str, id->len + 1);
    }
    return c;
}

void msgid_free(msgid_t *id)
{
    if (id->kind == ID_STR)
        free(id->str);
    id->kind = ID_NONE;
    id->str = NULL;
}

bool msgid_eq(const msgid_t *a, const msgid_t *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == ID_STR)
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    return a->kind == ID_NONE || a->num == b->num;
}

/* ------------------------------------------------------------------ inbound */

/* Index of the first byte of the first invalid UTF-8 sequence, or -1. */
static long utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return (long)i;
        }
        if (i + len > n)
            return (long)i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return (long)i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return (long)i;
        i += len;
    }
    return -1;
}

/* Raw control characters are not JSON (inside strings or between tokens); cJSON lets some
 * through, so they are refused before it sees them. Returns the offending index or -1. */
static long control_char_at(const unsigned char *s, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            else if (c < 0x20)
                return (long)i;
        } else if (c == '"') {
            in_string = true;
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return (long)i;
        }
    }
    return -1;
}

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsString(v))
        return "string";
    return cJSON_IsArray(v) ? "array" : "object";
}

/* The type name the way the reference's validator words it. */
static const char *value_type(const json_doc *doc, const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "bool";
    if (cJSON_IsNumber(v))
        return json_number_kind(doc, v, NULL) == NUM_FLOAT ? "float" : "int";
    if (cJSON_IsString(v))
        return "str";
    return cJSON_IsArray(v) ? "array" : "object";
}

const cJSON *json_member(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            found = c;
    return found;
}

/* UTF-8 characters in s (the reference counts field lengths in characters). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A message id: 1 an id, 0 not an id at all, -1 an id too long to keep (R-BOUND). The
 * number's text decides, as in the reference: 7 is an id, 7.0 and 7e0 are not, and an
 * integer is read exactly or found to need more than 64 bits. */
static int read_id(const json_doc *doc, const cJSON *v, msgid_t *id)
{
    memset(id, 0, sizeof *id);
    if (cJSON_IsString(v)) {
        size_t len = 0;
        char *bytes = json_string_bytes(doc, v, &len);
        if (len > FIELD_MAX) {
            free(bytes);
            return -1;
        }
        id->kind = ID_STR;
        id->str = bytes;
        id->len = len;
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        switch (json_number_kind(doc, v, &id->num)) {
        case NUM_FLOAT: return 0;
        case NUM_BIG_INT: return -1; /* beyond 64 bits */
        case NUM_INT: id->kind = ID_INT; return 1;
        }
    }
    return 0;
}

bool depth_exceeds(const unsigned char *payload, size_t len, int limit)
{
    size_t opening = 0;
    for (size_t i = 0; i < len; i++)
        opening += payload[i] == '[' || payload[i] == '{';
    if (opening <= (size_t)limit)
        return false;
    /* Strings cut out (brackets inside them nest nothing), everything but brackets dropped,
     * then innermost pairs removed round by round: a well-formed document empties in exactly
     * its depth in rounds. What cannot be paired counts as if it all nested. */
    char *rest = xrealloc(NULL, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = payload[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && payload[j] != '"') {
                if (payload[j] == '\\' && j + 1 >= len)
                    break;
                j += payload[j] == '\\' ? 2 : 1;
            }
            if (j < len && payload[j] == '"') {
                i = j; /* a whole string: skipped */
                continue;
            }
        }
        if (c == '[' || c == ']' || c == '{' || c == '}')
            rest[n++] = (char)c;
    }
    int rounds = 0;
    bool deeper = false;
    while (n) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (i + 1 < n && ((rest[i] == '[' && rest[i + 1] == ']') || (rest[i] == '{' && rest[i + 1] == '}'))) {
                i++;
                continue;
            }
            rest[m++] = rest[i];
        }
        if (m == n) { /* unpaired brackets: assume the worst */
            size_t open = 0;
            for (size_t i = 0; i < n; i++)
                open += rest[i] == '[' || rest[i] == '{';
            deeper = (size_t)rounds + open > (size_t)limit;
            break;
        }
        n = m;
        if (++rounds > limit) {
            deeper = true;
            break;
        }
    }
    free(rest);
    return deeper;
}

/* ------------------------------------------------------------------ json_doc */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Offset of the first byte that breaks RFC 8259's number grammar in s[0..n), or -1. cJSON
 * hands strtod whatever looks numeric, so it takes 01, 1. and 1.e5; the reference does not. */
static long number_grammar(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return (long)i;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        if (++i >= n || !is_digit(s[i]))
            return (long)i;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return (long)i;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n ? -1 : (long)i;
}

static bool has_fraction_or_exponent(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
            return true;
    return false;
}

static void push_token(json_doc *doc, size_t at, size_t len)
{
    if (doc->n_tok == doc->cap_tok) {
        doc->cap_tok = doc->cap_tok ? 2 * doc->cap_tok : 16;
        doc->tok_at = xrealloc(doc->tok_at, doc->cap_tok * sizeof *doc->tok_at);
        doc->tok_len = xrealloc(doc->tok_len, doc->cap_tok * sizeof *doc->tok_len);
    }
    doc->tok_at[doc->n_tok] = at;
    doc->tok_len[doc->n_tok++] = len;
}

/* Record every string and number token of a text cJSON accepted; the offset of a number
 * that breaks the grammar, or -1. Outside strings only numbers start with - or a digit. */
static long scan_tokens(json_doc *doc, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            push_token(doc, i, j + 1 - i);
            i = j + 1;
        } else if (c == '-' || is_digit(c)) {
            size_t j = i;
            while (j < n && s[j] && strchr("0123456789+-.eE", s[j]))
                j++;
            long bad = number_grammar(s + i, j - i);
            if (bad >= 0)
                return (long)i + bad;
            push_token(doc, i, j - i);
            if (has_fraction_or_exponent((const char *)s + i, j - i)) {
                char *text = xrealloc(NULL, j - i + 1);
                memcpy(text, s + i, j - i);
                text[j - i] = '\0';
                if (isinf(strtod(text, NULL)))
                    doc->out_of_range = true; /* the reference's parser refuses it */
                free(text);
            }
            i = j;
        } else {
            i++;
        }
    }
    return -1;
}

bool json_parse(json_doc *doc, const unsigned char *payload, size_t len, char **error)
{
    memset(doc, 0, sizeof *doc);
    long bad = utf8_invalid_at(payload, len);
    if (bad >= 0) {
        *error = xprintf("invalid_utf8: byte %ld", bad);
        return false;
    }
    bad = control_char_at(payload, len);
    if (bad >= 0) {
        *error = xprintf("invalid_json: JSON is malformed: invalid character (byte %ld)", bad);
        return false;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);
    size_t at = end ? (size_t)(end - (const char *)payload) : len;
    if (root) { /* a value: only whitespace may follow it */
        while (at < len && strchr(" \t\r\n", payload[at]))
            at++;
    }
    if (!root || at < len) {
        cJSON_Delete(root);
        *error = at >= len ? xstrdup("invalid_json: Input data was truncated")
                           : xprintf("invalid_json: JSON is malformed (byte %zu)", at);
        return false;
    }
    bad = scan_tokens(doc, payload, len);
    if (bad >= 0) {
        cJSON_Delete(root);
        json_doc_free(doc);
        *error = xprintf("invalid_json: JSON is malformed: invalid number (byte %ld)", bad);
        return false;
    }
    doc->root = root;
    doc->text = (const char *)payload;
    return true;
}

void json_doc_free(json_doc *doc)
{
    cJSON_Delete(doc->root);
    free(doc->tok_at);
    free(doc->tok_len);
    memset(doc, 0, sizeof *doc);
}

/* Pre-order walk to target: *k counts the tokens before its value (a member's key first). */
static bool token_walk(const cJSON *item, const cJSON *target, size_t *k)
{
    for (; item; item = item->next) {
        if (item->string)
            (*k)++;
        if (item == target)
            return true;
        if (cJSON_IsString(item) || cJSON_IsNumber(item))
            (*k)++;
        if (item->child && token_walk(item->child, target, k))
            return true;
    }
    return false;
}

/* The text of a string or number item's token (a string's with its quotes). */
static const char *token_of(const json_doc *doc, const cJSON *item, size_t *len)
{
    size_t k = 0;
    if (!doc->root || !token_walk(doc->root, item, &k) || k >= doc->n_tok) {
        fputs("bwc: a JSON item outside its document\n", stderr);
        abort();
    }
    *len = doc->tok_len[k];
    return doc->text + doc->tok_at[k];
}

num_kind json_number_kind(const json_doc *doc, const cJSON *item, long long *value)
{
    size_t len = 0;
    const char *text = token_of(doc, item, &len);
    if (has_fraction_or_exponent(text, len))
        return NUM_FLOAT;
    size_t digits = len - (text[0] == '-');
    if (digits > 19) /* no leading zeros: 20 digits are beyond 64 bits */
        return NUM_BIG_INT;
    char buf[24];
    memcpy(buf, text, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return NUM_BIG_INT;
    if (value)
        *value = v;
    return NUM_INT;
}

char *json_integer_text(const json_doc *doc, const cJSON *item)
{
    size_t len = 0;
    const char *text = token_of(doc, item, &len);
    if (len == 2 && text[0] == '-' && text[1] == '0')
        return xstrdup("0");
    char *out = xrealloc(NULL, len + 1);
    memcpy(out, text, len);
    out[len] = '\0';
    return out;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* A string token cJSON accepted: every escape is valid, every surrogate paired. */
char *json_string_bytes(const json_doc *doc, const cJSON *item, size_t *len)
{
    size_t n = 0;
    const char *tok = token_of(doc, item, &n);
    char *out = xrealloc(NULL, n + 1), *o = out;
    for (size_t i = 1; i + 1 < n; i++) {
        if (tok[i] != '\\') {
            *o++ = tok[i];
            continue;
        }
        char e = tok[++i];
        if (e != 'u') {
            *o++ = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                 : e == 't' ? '\t' : e; /* \" \\ \/ */
            continue;
        }
        unsigned cp = hex4(tok + i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n - 1 && tok[i + 1] == '\\' && tok[i + 2] == 'u') {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(tok + i + 3) - 0xDC00);
            i += 6;
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 63));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | cp >> 12);
            *o++ = (char)(0x80 | (cp >> 6 & 63));
            *o++ = (char)(0x80 | (cp & 63));
        } else {
            *o++ = (char)(0xF0 | cp >> 18);
            *o++ = (char)(0x80 | (cp >> 12 & 63));
            *o++ = (char)(0x80 | (cp >> 6 & 63));
            *o++ = (char)(0x80 | (cp & 63));
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

/* ------------------------------------------------------------------ events */

static const char *const EVENT_NAMES[] = {"activity_start", "activity_end", "dock",
                                          "undock", "button", "signal", "deactivate",
                                          "reactivate"};
#define N_EVENTS (sizeof EVENT_NAMES / sizeof EVENT_NAMES[0])

const char *event_name(event_type t) { return EVENT_NAMES[t]; }

/* Required string fields of each event type, in the order the reference checks them. */
static const char *const *required_fields(event_type t)
{
    static const char *const start[] = {"activity", "activity_id", NULL};
    static const char *const end[] = {"activity_id", NULL};
    static const char *const button[] = {"action", NULL};
    static const char *const signal[] = {"source", NULL};
    static const char *const deactivate[] = {"reason", "actor", NULL};
    static const char *const none[] = {NULL};
    switch (t) {
    case EV_ACTIVITY_START: return start;
    case EV_ACTIVITY_END: return end;
    case EV_BUTTON: return button;
    case EV_SIGNAL: return signal;
    case EV_DEACTIVATE: return deactivate;
    default: return none;
    }
}

static bool listed(const char *const *names, const char *name)
{
    for (; *names; names++)
        if (strcmp(*names, name) == 0)
            return true;
    return false;
}

static char **field_slot(event_t *ev, const char *name)
{
    if (strcmp(name, "activity") == 0) return &ev->activity;
    if (strcmp(name, "activity_id") == 0) return &ev->activity_id;
    if (strcmp(name, "source") == 0) return &ev->source;
    if (strcmp(name, "reason") == 0) return &ev->reason;
    if (strcmp(name, "actor") == 0) return &ev->actor;
    return NULL;
}

/* The NACK for one known field of the event, or NULL when it is fine (and then stored). */
static char *read_field(const json_doc *doc, event_t *ev, const cJSON *c,
                        const char *const *fields)
{
    const char *name = c->string;
    if (strcmp(name, "ts") == 0) {
        if (cJSON_IsNumber(c)) {
            if (isinf(c->valuedouble)) /* an integer too long for a double */
                return xstrdup("invalid_field: ts: Number out of range");
            ev->has_ts = true;
            ev->ts = c->valuedouble;
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: ts: Expected `float | null`, got `%s`", value_type(doc, c));
        }
    } else if (strcmp(name, "seq") == 0) { /* a signed command's sequence number (SPEC 14) */
        long long seq = 0;
        num_kind kind = cJSON_IsNumber(c) ? json_number_kind(doc, c, &seq) : NUM_FLOAT;
        if (cJSON_IsNumber(c) && kind != NUM_FLOAT) {
            bool negative = c->valuedouble < 0;
            if (negative || (kind == NUM_INT && seq < 0))
                return xstrdup("invalid_field: seq: Expected `int` >= 0");
            if (kind == NUM_BIG_INT)
                return xstrdup("invalid_field: seq: Expected `int` <= 9223372036854775807");
            ev->has_seq = true;
            ev->seq = seq;
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: seq: Expected `int | null`, got `%s`", value_type(doc, c));
        }
    } else if (strcmp(name, "to") == 0) { /* the target a signed command was signed for */
        if (cJSON_IsString(c)) {
            if (utf8_chars(c->valuestring) > FIELD_MAX)
                return xprintf("too_long: to: more than %d characters", FIELD_MAX);
            ev->to = xstrdup(c->valuestring);
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: to: Expected `str | null`, got `%s`", value_type(doc, c));
        }
    } else if (listed(fields, name)) {
        if (!cJSON_IsString(c))
            return xprintf("invalid_field: %s: Expected `str`, got `%s`", name, value_type(doc, c));
        if (ev->type == EV_BUTTON) {
            if (strcmp(c->valuestring, "start") != 0 && strcmp(c->valuestring, "stop") != 0)
                return xprintf("invalid_field: action: Invalid enum value '%s'", c->valuestring);
            ev->start = strcmp(c->valuestring, "start") == 0;
            return NULL;
        }
        if (utf8_chars(c->valuestring) > FIELD_MAX)
            return xprintf("too_long: %s: more than %d characters", name, FIELD_MAX);
        if (strcmp(name, "actor") == 0 && !c->valuestring[0])
            return xstrdup("invalid_field: actor: Expected `str` of length >= 1");
        char **slot = field_slot(ev, name);
        free(*slot);
        *slot = xstrdup(c->valuestring);
    }
    return NULL;
}

bool decode_event(const unsigned char *payload, size_t len, event_t *ev, msgid_t *id, char **error)
{
    memset(ev, 0, sizeof *ev);
    memset(id, 0, sizeof *id);
    *error = NULL;
    if (len > MAX_PAYLOAD) {
        *error = xprintf("payload_too_large: %zu bytes > %d", len, MAX_PAYLOAD);
        return false;
    }
    if (depth_exceeds(payload, len, MAX_DEPTH)) { /* before any parser recurses (R-BOUND) */
        *error = xprintf("too_deep: nested more than %d levels", MAX_DEPTH);
        return false;
    }
    json_doc doc;
    if (!json_parse(&doc, payload, len, error))
        return false;
    const cJSON *root = doc.root;
    bool ok = false;
    if (!cJSON_IsObject(root)) {
        *error = xprintf("not_an_object: got %s", json_type(root));
        goto done;
    }
    const cJSON *idv = json_member(root, "id");
    if (!idv) {
        *error = xstrdup("missing_field: id");
        goto done;
    }
    int read = read_id(&doc, idv, id);
    if (read < 0) {
        *error = xprintf("too_long: id: more than %d bytes or 64 bits", FIELD_MAX);
        goto done;
    }
    if (read == 0) {
        *error = xprintf("invalid_field: id: expected string or integer, got %s", json_type(idv));
        goto done;
    }
    const cJSON *typev = json_member(root, "type");
    if (!typev) {
        *error = xstrdup("missing_field: type");
        goto done;
    }
    if (!cJSON_IsString(typev)) {
        *error = xprintf("invalid_field: type: expected string, got %s", json_type(typev));
        goto done;
    }
    size_t t = 0;
    while (t < N_EVENTS && strcmp(EVENT_NAMES[t], typev->valuestring) != 0)
        t++;
    if (t == N_EVENTS) {
        *error = xprintf("unknown_type: '%s' (one of activity_start, activity_end, dock, undock, "
                         "button, signal, deactivate, reactivate)", typev->valuestring);
        goto done;
    }
    ev->type = (event_type)t;
    const char *const *fields = required_fields(ev->type);
    /* Known fields in the order they appear, as the reference's validator meets them. */
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string || json_member(root, c->string) != c)
            continue; /* an earlier copy of a repeated key */
        *error = read_field(&doc, ev, c, fields);
        if (*error)
            goto done;
    }
    for (; *fields; fields++) {
        if (!json_member(root, *fields)) {
            *error = xprintf("missing_field: %s", *fields);
            goto done;
        }
    }
    ev->id = msgid_copy(id);
    ok = true;
done:
    if (!ok && doc.out_of_range) {
        /* The reference looks closer at a payload its typed decoder refused by parsing all of
         * it, numbers in unknown fields included: a number beyond a double stops it there. */
        free(*error);
        *error = xstrdup("invalid_json: Number out of range");
        msgid_free(id);
    }
    json_doc_free(&doc);
    if (!ok)
        event_free(ev);
    return ok;
}

void event_free(event_t *ev)
{
    msgid_free(&ev->id);
    free(ev->activity);
    free(ev->activity_id);
    free(ev->source);
    free(ev->reason);
    free(ev->actor);
    free(ev->to);
    memset(ev, 0, sizeof *ev);
}

/* Parse a payload for a look at it (no error text): false when it is no JSON value the
 * reference could read (a number beyond a double included). */
static bool peek_json(json_doc *doc, const unsigned char *payload, size_t len)
{
    memset(doc, 0, sizeof *doc);
    if (len > MAX_PAYLOAD || depth_exceeds(payload, len, MAX_DEPTH))
        return false;
    char *error = NULL;
    if (!json_parse(doc, payload, len, &error)) {
        free(error);
        return false;
    }
    if (doc->out_of_range) {
        json_doc_free(doc);
        return false;
    }
    return true;
}

msgid_t peek_id(const unsigned char *payload, size_t len)
{
    msgid_t id = {ID_NONE, NULL, 0, 0};
    json_doc doc;
    if (peek_json(&doc, payload, len) && cJSON_IsObject(doc.root)) {
        const cJSON *v = json_member(doc.root, "id");
        if (v && read_id(&doc, v, &id) <= 0)
            msgid_free(&id);
    }
    json_doc_free(&doc);
    return id;
}

const char *peek_type(const unsigned char *payload, size_t len)
{
    const char *found = NULL;
    json_doc doc;
    bool read = peek_json(&doc, payload, len);
    const cJSON *t = read && cJSON_IsObject(doc.root) ? json_member(doc.root, "type") : NULL;
    for (size_t i = 0; cJSON_IsString(t) && i < N_EVENTS; i++)
        if (strcmp(EVENT_NAMES[i], t->valuestring) == 0)
            found = EVENT_NAMES[i];
    json_doc_free(&doc);
    return found;
}

bool decode_envelope(const unsigned char *payload, size_t len, envelope_t *env)
{
    memset(env, 0, sizeof *env);
    if (len > MAX_PAYLOAD || !memmem(payload, len, "\"sig\"", 5))
        return false;
    json_doc doc;
    bool read = peek_json(&doc, payload, len);
    const cJSON *root = doc.root;
    const cJSON *by = read && cJSON_IsObject(root) ? json_member(root, "by") : NULL;
    const cJSON *sig = by ? json_member(root, "sig") : NULL;
    const cJSON *body = sig ? json_member(root, "body") : NULL;
    bool ok = cJSON_IsString(by) && cJSON_IsString(sig) && cJSON_IsString(body) &&
              utf8_chars(by->valuestring) <= FIELD_MAX;
    if (ok) {
        env->by = xstrdup(by->valuestring);
        env->sig = xstrdup(sig->valuestring);
        env->body = xstrdup(body->valuestring);
    }
    json_doc_free(&doc);
    return ok;
}

void envelope_free(envelope_t *env)
{
    free(env->by);
    free(env->sig);
    free(env->body);
    memset(env, 0, sizeof *env);
}

/* ------------------------------------------------------------------ outbound */

/* ------------------------------------------------------------------ canonical JSON text */

void sb_put(strbuf *sb, const char *s, size_t n)
{
    if (sb->n + n + 1 > sb->cap) {
        sb->cap = sb->cap ? sb->cap : 64;
        while (sb->n + n + 1 > sb->cap)
            sb->cap *= 2;
        sb->s = xrealloc(sb->s, sb->cap);
    }
    memcpy(sb->s + sb->n, s, n);
    sb->n += n;
    sb->s[sb->n] = '\0';
}

void sb_puts(strbuf *sb, const char *s) { sb_put(sb, s, strlen(s)); }

void sb_json_string(strbuf *sb, const char *s, size_t len)
{
    sb_put(sb, "\"", 1);
    size_t run = 0; /* bytes copied as they are, written in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        sb_put(sb, s + i - run, run);
        run = 0;
        char esc[8];
        switch (c) {
        case '"': sb_put(sb, "\\\"", 2); break;
        case '\\': sb_put(sb, "\\\\", 2); break;
        case '\b': sb_put(sb, "\\b", 2); break;
        case '\f': sb_put(sb, "\\f", 2); break;
        case '\n': sb_put(sb, "\\n", 2); break;
        case '\r': sb_put(sb, "\\r", 2); break;
        case '\t': sb_put(sb, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(sb, esc, 6);
        }
    }
    sb_put(sb, s + len - run, run);
    sb_put(sb, "\"", 1);
}

/* The digits and decimal exponent of a "%.*e" text: "-1.25e+03" -> "125", 3. */
static void split_e(const char *text, char *digits, int *exp10)
{
    size_t n = 0;
    for (const char *p = text; *p && *p != 'e'; p++)
        if (is_digit((unsigned char)*p))
            digits[n++] = *p;
    digits[n] = '\0';
    *exp10 = atoi(strchr(text, 'e') + 1);
}

/* digits (d.ddd) x 10^exp10 + one unit in the last digit, in place; the exponent moves when
 * the digits carry over (9.99 -> 1.00e+1). */
static void bump_up(char *digits, int *exp10)
{
    size_t n = strlen(digits);
    size_t i = n;
    while (i-- > 0) {
        if (digits[i] != '9') {
            digits[i]++;
            return;
        }
        digits[i] = '0';
    }
    memmove(digits + 1, digits, n - 1); /* all nines: 1 followed by zeros, one place up */
    digits[0] = '1';
    (*exp10)++;
}

static double read_back(const char *digits, int exp10)
{
    char text[48];
    snprintf(text, sizeof text, "%c.%se%d", digits[0], digits + 1, exp10);
    return strtod(text, NULL);
}

void format_double(double value, char *out)
{
    /* The same instant is written many times in a row (each audit entry of a step, the state's
     * since): the last result is kept. Compared by bits, so 0.0 and -0.0 stay apart. */
    static double last;
    static char last_text[32];
    static bool have_last;
    if (have_last && memcmp(&value, &last, sizeof value) == 0) {
        strcpy(out, last_text);
        return;
    }
    if (value == 0.0) {
        strcpy(out, signbit(value) ? "-0.0" : "0.0");
        return;
    }
    double x = fabs(value);
    char text[48], digits[24];
    int exp10 = 0;
    /* The shortest digits that read back as x, and of those the nearest (as Ryu finds them).
     * Up to 15 digits at most one decimal of each length reads back as x, so the nearest one
     * with 15 digits, its trailing zeros cut, is the shortest when it reads back at all. With
     * 16 the nearest can miss below while its neighbour above reads back (right above a power
     * of two the gap to the next double down is half the gap up): that one is tried too. 17
     * digits always read back. A subnormal has fewer significant bits, so many decimals of
     * 15 digits read back as it: there every length is tried, from 1 up. */
    for (int p = x < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(text, sizeof text, "%.*e", p - 1, x);
        split_e(text, digits, &exp10);
        double back = strtod(text, NULL);
        if (back == x)
            break;
        if (back < x && p >= 16) {
            char up[24];
            int up_exp = exp10;
            memcpy(up, digits, sizeof up);
            bump_up(up, &up_exp);
            if (read_back(up, up_exp) == x) {
                memcpy(digits, up, sizeof up);
                exp10 = up_exp;
                break;
            }
        }
    }
    size_t n = strlen(digits);
    while (n > 1 && digits[n - 1] == '0')
        digits[--n] = '\0';
    int point = exp10 + 1; /* the value is 0.digits x 10^point */
    char *o = out;
    if (value < 0)
        *o++ = '-';
    if (point >= (int)n && point <= 16) { /* 3600.0 */
        memcpy(o, digits, n);
        o += n;
        for (int i = (int)n; i < point; i++)
            *o++ = '0';
        strcpy(o, ".0");
    } else if (point > 0 && point <= 16) { /* 12.5 */
        memcpy(o, digits, (size_t)point);
        o += point;
        *o++ = '.';
        strcpy(o, digits + point);
    } else if (point > -5 && point <= 0) { /* 0.00001 */
        *o++ = '0';
        *o++ = '.';
        for (int i = point; i < 0; i++)
            *o++ = '0';
        strcpy(o, digits);
    } else if (n == 1) { /* 1e16 */
        sprintf(o, "%ce%d", digits[0], point - 1);
    } else { /* 1.5e-7 */
        sprintf(o, "%c.%se%d", digits[0], digits + 1, point - 1);
    }
    last = value;
    strcpy(last_text, out);
    have_last = true;
}

cJSON *json_number(double value)
{
    char buf[40];
    if (!isfinite(value))
        return cJSON_CreateNull();
    format_double(value, buf);
    return cJSON_CreateRaw(buf);
}

static char *print(cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!text) {
        fputs("bwc: cannot encode JSON\n", stderr);
        abort();
    }
    return text;
}

cJSON *json_id(const msgid_t *id)
{
    if (id->kind == ID_STR) { /* with its length: cJSON would stop at a NUL */
        strbuf sb = {0};
        sb_json_string(&sb, id->str, id->len);
        cJSON *raw = cJSON_CreateRaw(sb.s);
        free(sb.s);
        return raw;
    }
    if (id->kind == ID_INT) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", id->num);
        return cJSON_CreateRaw(buf);
    }
    return cJSON_CreateNull();
}

static cJSON *string_array(char *const *items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(items[i]));
    return a;
}

char *encode_ack(const msgid_t *id, bool ok, const char *error)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "id", json_id(id));
    cJSON_AddBoolToObject(o, "ok", ok);
    if (error)
        cJSON_AddStringToObject(o, "error", error);
    return print(o);
}

char *encode_state(cam_state state, double since, char *const *active, size_t n_active,
                   double battery_s, double storage_s, const char *auth)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_name(state));
    cJSON_AddItemToObject(o, "since", json_number(since));
    cJSON_AddItemToObject(o, "active", string_array(active, n_active));
    cJSON_AddItemToObject(o, "battery_s", json_number(battery_s));
    cJSON_AddItemToObject(o, "storage_s", json_number(storage_s));
    cJSON_AddStringToObject(o, "auth", auth);
    return print(o);
}

char *encode_alert(const char *kind, double at, const char *cause, const char *activity_id,
                   const double *span)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddItemToObject(o, "at", json_number(at));
    if (cause)
        cJSON_AddStringToObject(o, "cause", cause);
    if (activity_id)
        cJSON_AddStringToObject(o, "activity_id", activity_id);
    if (span) {
        cJSON *s = cJSON_CreateArray();
        cJSON_AddItemToArray(s, json_number(span[0]));
        cJSON_AddItemToArray(s, json_number(span[1]));
        cJSON_AddItemToObject(o, "span", s);
    }
    return print(o);
}

char *encode_recording(const char *camera, const char *recording, const char *incident,
                       double start, double end, double buffer_s, char *const *reasons,
                       size_t n_reasons, const double *segments, size_t n_segments,
                       bool final, bool open)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "camera", camera);
    cJSON_AddStringToObject(o, "recording", recording);
    cJSON_AddStringToObject(o, "incident", incident);
    cJSON_AddItemToObject(o, "start", json_number(start));
    cJSON_AddItemToObject(o, "end", json_number(end));
    cJSON_AddItemToObject(o, "buffer_s", json_number(buffer_s));
    cJSON_AddItemToObject(o, "reasons", string_array(reasons, n_reasons));
    cJSON_AddItemToObject(o, "segments", cJSON_CreateNumber((double)n_segments));
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n_segments; i++) {
        cJSON *seg = cJSON_CreateArray();
        cJSON_AddItemToArray(seg, json_number(segments[2 * i]));
        cJSON_AddItemToArray(seg, json_number(segments[2 * i + 1]));
        cJSON_AddItemToArray(list, seg);
    }
    cJSON_AddItemToObject(o, "segment_list", list);
    cJSON_AddBoolToObject(o, "final", final);
    cJSON_AddBoolToObject(o, "open", open);
    return print(o);
}

/* ------------------------------------------------------------------ topics */

void topics_init(topics_t *t, const setup_t *s)
{
    t->event = xprintf("%s/%s/event", s->prefix, s->camera_id);
    t->state = xprintf("%s/%s/state", s->prefix, s->camera_id);
    t->availability = xprintf("%s/%s/availability", s->prefix, s->camera_id);
    t->ack = xprintf("%s/%s/ack", s->prefix, s->camera_id);
    t->alert = xprintf("%s/%s/alert", s->prefix, s->camera_id);
    t->recording = xprintf("%s/%s/recording", s->prefix, s->camera_id);
    t->n_teams = s->n_teams;
    t->team_events = xrealloc(NULL, s->n_teams * sizeof *t->team_events);
    for (size_t i = 0; i < s->n_teams; i++)
        t->team_events[i] = xprintf("%s/team/%s/event", s->prefix, s->teams[i]);
}

void topics_free(topics_t *t)
{
    free(t->event);
    free(t->state);
    free(t->availability);
    free(t->ack);
    free(t->alert);
    free(t->recording);
    for (size_t i = 0; i < t->n_teams; i++)
        free(t->team_events[i]);
    free(t->team_events);
}

bool topics_is_inbound(const topics_t *t, const char *topic)
{
    if (strcmp(topic, t->event) == 0)
        return true;
    for (size_t i = 0; i < t->n_teams; i++)
        if (strcmp(topic, t->team_events[i]) == 0)
            return true;
    return false;
}
