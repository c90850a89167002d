/*
 * codec.c -- bytes <-> the camera's messages, with the refusal words of bwcsim SPEC 4 (R-BAD).
 *
 * An inbound payload is checked in the order that gives the most useful NACK: size, UTF-8,
 * JSON syntax, an object, its "id", its "type", then the fields of that type. Unknown extra
 * fields are ignored; a repeated key counts with its last value (as most JSON parsers do).
 * Nothing here allocates more than the payload is worth, and nothing aborts on bad input.
 */
#define _POSIX_C_SOURCE 200809L

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

static bool read_id(const cJSON *v, msgid_t *id)
{
    id->kind = ID_NONE;
    id->str = NULL;
    if (cJSON_IsString(v)) {
        id->kind = ID_STR;
        id->str = xstrdup(v->valuestring);
        return true;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18) {
            id->kind = ID_INT;
            id->num = (long long)d;
            return true;
        }
    }
    return false;
}

static const char *const EVENT_NAMES[] = {"activity_start", "activity_end", "dock",
                                          "undock", "button", "signal", "deactivate",
                                          "reactivate"};
#define N_EVENTS (sizeof EVENT_NAMES / sizeof EVENT_NAMES[0])

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
    if (!read_id(idv, id)) {
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
        if (strcmp(c->string, "ts") == 0) {
            if (cJSON_IsNumber(c)) {
                ev->has_ts = true;
                ev->ts = c->valuedouble;
            } else if (!cJSON_IsNull(c)) {
                *error = xprintf("invalid_field: ts: Expected `float | null`, got `%s`", value_type(c));
                goto done;
            }
        } else if (listed(fields, c->string)) {
            if (!cJSON_IsString(c)) {
                *error = xprintf("invalid_field: %s: Expected `str`, got `%s`", c->string, value_type(c));
                goto done;
            }
            if (ev->type == EV_BUTTON) {
                if (strcmp(c->valuestring, "start") != 0 && strcmp(c->valuestring, "stop") != 0) {
                    *error = xprintf("invalid_field: action: Invalid enum value '%s'", c->valuestring);
                    goto done;
                }
                ev->start = strcmp(c->valuestring, "start") == 0;
            } else {
                *field_slot(ev, c->string) = xstrdup(c->valuestring);
            }
        }
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
    memset(ev, 0, sizeof *ev);
}

msgid_t peek_id(const unsigned char *payload, size_t len)
{
    msgid_t id = {ID_NONE, NULL, 0};
    if (len > MAX_PAYLOAD || utf8_invalid_at(payload, len) >= 0 || control_char_at(payload, len) >= 0)
        return id;
    cJSON *root = cJSON_ParseWithLength((const char *)payload, len);
    if (root && cJSON_IsObject(root)) {
        const cJSON *v = member(root, "id");
        if (v)
            read_id(v, &id);
    }
    cJSON_Delete(root);
    return id;
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
                   double battery_s, double storage_s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_name(state));
    cJSON_AddItemToObject(o, "since", json_number(since));
    cJSON_AddItemToObject(o, "active", string_array(active, n_active));
    cJSON_AddItemToObject(o, "battery_s", json_number(battery_s));
    cJSON_AddItemToObject(o, "storage_s", json_number(storage_s));
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
