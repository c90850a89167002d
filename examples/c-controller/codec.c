/*
 * codec.c -- bytes <-> the camera's messages, with the refusal words of bwcsim SPEC 4 (R-BAD).
 *
 * An inbound payload is checked in the order that gives the most useful NACK: size, UTF-8,
 * JSON syntax, an object, its "id", its "type", then the fields of that type. Unknown extra
 * fields are ignored; a repeated key counts with its last value (as most JSON parsers do).
 * Nothing here allocates more than the payload is worth, and nothing aborts on bad input.
 */
#define _GNU_SOURCE /* memmem */

#include "codec.h"

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
    if (id->kind == ID_STR)
        c.str = xstrdup(id->str);
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
        return strcmp(a->str, b->str) == 0;
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
static const char *value_type(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "bool";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        return d == floor(d) && fabs(d) < 9.2e18 ? "int" : "float";
    }
    if (cJSON_IsString(v))
        return "str";
    return cJSON_IsArray(v) ? "array" : "object";
}

/* The last member named key (a repeated key counts with its last value). */
static const cJSON *member(const cJSON *obj, const char *key)
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

/* A message id: 1 an id, 0 not an id at all, -1 an id too long to keep (R-BOUND). */
static int read_id(const cJSON *v, msgid_t *id)
{
    id->kind = ID_NONE;
    id->str = NULL;
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) > FIELD_MAX)
            return -1;
        id->kind = ID_STR;
        id->str = xstrdup(v->valuestring);
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != floor(d))
            return 0;
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return -1; /* beyond 64 bits */
        id->kind = ID_INT;
        id->num = (long long)d;
        return 1;
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

/* Parse a payload that must be one JSON value; NULL and *error (malloc'd) otherwise. */
static cJSON *parse_json(const unsigned char *payload, size_t len, char **error)
{
    long bad = utf8_invalid_at(payload, len);
    if (bad >= 0) {
        *error = xprintf("invalid_utf8: byte %ld", bad);
        return NULL;
    }
    bad = control_char_at(payload, len);
    if (bad >= 0) {
        *error = xprintf("invalid_json: JSON is malformed: invalid character (byte %ld)", bad);
        return NULL;
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
        return NULL;
    }
    return root;
}

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
static char *read_field(event_t *ev, const cJSON *c, const char *const *fields)
{
    const char *name = c->string;
    if (strcmp(name, "ts") == 0) {
        if (cJSON_IsNumber(c)) {
            ev->has_ts = true;
            ev->ts = c->valuedouble;
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: ts: Expected `float | null`, got `%s`", value_type(c));
        }
    } else if (strcmp(name, "seq") == 0) { /* a signed command's sequence number (SPEC 14) */
        if (cJSON_IsNumber(c) && c->valuedouble == floor(c->valuedouble)) {
            if (c->valuedouble < 0)
                return xstrdup("invalid_field: seq: Expected `int` >= 0");
            if (!(c->valuedouble < 9223372036854775808.0))
                return xstrdup("invalid_field: seq: Expected `int` <= 9223372036854775807");
            ev->has_seq = true;
            ev->seq = (long long)c->valuedouble;
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: seq: Expected `int | null`, got `%s`", value_type(c));
        }
    } else if (strcmp(name, "to") == 0) { /* the target a signed command was signed for */
        if (cJSON_IsString(c)) {
            if (utf8_chars(c->valuestring) > FIELD_MAX)
                return xprintf("too_long: to: more than %d characters", FIELD_MAX);
            ev->to = xstrdup(c->valuestring);
        } else if (!cJSON_IsNull(c)) {
            return xprintf("invalid_field: to: Expected `str | null`, got `%s`", value_type(c));
        }
    } else if (listed(fields, name)) {
        if (!cJSON_IsString(c))
            return xprintf("invalid_field: %s: Expected `str`, got `%s`", name, value_type(c));
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
    id->kind = ID_NONE;
    id->str = NULL;
    *error = NULL;
    if (len > MAX_PAYLOAD) {
        *error = xprintf("payload_too_large: %zu bytes > %d", len, MAX_PAYLOAD);
        return false;
    }
    if (depth_exceeds(payload, len, MAX_DEPTH)) { /* before any parser recurses (R-BOUND) */
        *error = xprintf("too_deep: nested more than %d levels", MAX_DEPTH);
        return false;
    }
    cJSON *root = parse_json(payload, len, error);
    if (!root)
        return false;
    bool ok = false;
    if (!cJSON_IsObject(root)) {
        *error = xprintf("not_an_object: got %s", json_type(root));
        goto done;
    }
    const cJSON *idv = member(root, "id");
    if (!idv) {
        *error = xstrdup("missing_field: id");
        goto done;
    }
    int read = read_id(idv, id);
    if (read < 0) {
        *error = xprintf("too_long: id: more than %d bytes or 64 bits", FIELD_MAX);
        goto done;
    }
    if (read == 0) {
        *error = xprintf("invalid_field: id: expected string or integer, got %s", json_type(idv));
        goto done;
    }
    const cJSON *typev = member(root, "type");
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
        if (!c->string || member(root, c->string) != c)
            continue; /* an earlier copy of a repeated key */
        *error = read_field(ev, c, fields);
        if (*error)
            goto done;
    }
    for (; *fields; fields++) {
        if (!member(root, *fields)) {
            *error = xprintf("missing_field: %s", *fields);
            goto done;
        }
    }
    ev->id = msgid_copy(id);
    ok = true;
done:
    cJSON_Delete(root);
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

/* Parse a payload for a look at it (no error text): NULL when it is no JSON value. */
static cJSON *peek_json(const unsigned char *payload, size_t len)
{
    if (len > MAX_PAYLOAD || depth_exceeds(payload, len, MAX_DEPTH))
        return NULL;
    char *error = NULL;
    cJSON *root = parse_json(payload, len, &error);
    free(error);
    return root;
}

msgid_t peek_id(const unsigned char *payload, size_t len)
{
    msgid_t id = {ID_NONE, NULL, 0};
    cJSON *root = peek_json(payload, len);
    if (root && cJSON_IsObject(root)) {
        const cJSON *v = member(root, "id");
        if (v && read_id(v, &id) <= 0)
            msgid_free(&id);
    }
    cJSON_Delete(root);
    return id;
}

const char *peek_type(const unsigned char *payload, size_t len)
{
    const char *found = NULL;
    cJSON *root = peek_json(payload, len);
    const cJSON *t = root && cJSON_IsObject(root) ? member(root, "type") : NULL;
    for (size_t i = 0; cJSON_IsString(t) && i < N_EVENTS; i++)
        if (strcmp(EVENT_NAMES[i], t->valuestring) == 0)
            found = EVENT_NAMES[i];
    cJSON_Delete(root);
    return found;
}

bool decode_envelope(const unsigned char *payload, size_t len, envelope_t *env)
{
    memset(env, 0, sizeof *env);
    if (len > MAX_PAYLOAD || !memmem(payload, len, "\"sig\"", 5))
        return false;
    cJSON *root = peek_json(payload, len);
    const cJSON *by = root && cJSON_IsObject(root) ? member(root, "by") : NULL;
    const cJSON *sig = by ? member(root, "sig") : NULL, *body = sig ? member(root, "body") : NULL;
    bool ok = cJSON_IsString(by) && cJSON_IsString(sig) && cJSON_IsString(body) &&
              utf8_chars(by->valuestring) <= FIELD_MAX;
    if (ok) {
        env->by = xstrdup(by->valuestring);
        env->sig = xstrdup(sig->valuestring);
        env->body = xstrdup(body->valuestring);
    }
    cJSON_Delete(root);
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

cJSON *json_number(double value)
{
    char buf[40];
    if (!isfinite(value))
        return cJSON_CreateNull();
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, value);
        if (strtod(buf, NULL) == value)
            break;
    }
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

static cJSON *id_json(const msgid_t *id)
{
    if (id->kind == ID_STR)
        return cJSON_CreateString(id->str);
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
    cJSON_AddItemToObject(o, "id", id_json(id));
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
    cJSON_AddItemToObject(o, "segments", json_number((double)n_segments));
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
