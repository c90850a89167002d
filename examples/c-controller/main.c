/*
 * main.c -- the stdio shell: bwcsim node protocol v1 on stdin/stdout around the camera core.
 *
 * One JSON object per line each way. The bench writes a request, this loop answers it and
 * flushes, and only then does the bench write the next one:
 *
 *   hello    -> {"seq","protocol":1,"name","max_cameras":null,"features":[...]}
 *   setup    -> {"seq","subscriptions":[...]}       builds camera number "node"
 *   start, deliver, timer, finish
 *            -> {"seq","publish":[{"topic","payload"(base64),"retain","qos"}],"deadline"}
 *   deadline -> {"seq","deadline"}
 *   audit    -> {"seq","entries":[...],"head"}      the node's audit log (feature "audit")
 *   close    -> {"seq"}                              forgets a node
 *   bye      -> {"seq"}, then exit 0                 (end of input: exit 0 too)
 *   anything it cannot serve -> {"seq","error":"why"}
 *
 * hello's "features" lists what the host can use; the answer lists those this child accepts
 * (bwc-fixed: "audit"; bwc-naive keeps no audit log and accepts none). With "audit" agreed, a
 * finished node keeps its log, readable with "audit", until the host closes it.
 *
 * seq, node and the protocol version are integers, read from their text as the reference
 * reads them (codec.h, json_doc): 7.0 is refused, 9007199254740993 is echoed exactly.
 *
 * One process serves any number of cameras, each its own camera_t. Nothing here knows what a
 * camera does: that is camera_naive.c or camera_fixed.c. On a real camera this file is
 * replaced by the MQTT client and a timer; the core does not change.
 */
#define _POSIX_C_SOURCE 200809L

#include "bwc.h"
#include "codec.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define PROTOCOL 1

/* ------------------------------------------------------------------ setup documents */

static bool get_number(const cJSON *obj, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return false;
    *out = v->valuedouble;
    return true;
}

static const char *get_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool get_strings(const cJSON *obj, const char *key, char ***out, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a))
        return false;
    *n = (size_t)cJSON_GetArraySize(a);
    *out = xrealloc(NULL, *n * sizeof **out);
    size_t i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++)
        (*out)[i] = xstrdup(cJSON_IsString(c) ? c->valuestring : "");
    return true;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void setup_free(setup_t *s)
{
    free(s->camera_id);
    free(s->prefix);
    free_strings(s->teams, s->n_teams);
    free(s->policy.name);
    for (size_t i = 0; i < s->policy.n_activities; i++)
        free(s->policy.activities[i].name);
    free(s->policy.activities);
    free_strings(s->policy.signals, s->policy.n_signals);
    free_strings(s->policy.reasons, s->policy.n_reasons);
    for (size_t i = 0; i < s->policy.n_roles; i++) {
        free(s->policy.roles[i].name);
        free_strings(s->policy.roles[i].events, s->policy.roles[i].n_events);
    }
    free(s->policy.roles);
    for (size_t i = 0; i < s->n_principals; i++) {
        free(s->principals[i].name);
        free(s->principals[i].role);
        free(s->principals[i].camera);
        free(s->principals[i].keys);
    }
    free(s->principals);
    free(s);
}

/* The trust file's principals; false (and *why) on a malformed one. */
static bool trust_parse(setup_t *s, const cJSON *trust, const char **why)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(trust, "principals");
    *why = "trust needs principals, each with a name, a role and ed25519: keys";
    if (!cJSON_IsArray(list))
        return false;
    s->signed_auth = true;
    s->n_principals = (size_t)cJSON_GetArraySize(list);
    s->principals = xrealloc(NULL, s->n_principals * sizeof *s->principals);
    memset(s->principals, 0, s->n_principals * sizeof *s->principals);
    size_t i = 0;
    for (const cJSON *p = list->child; p; p = p->next, i++) {
        principal_t *pr = &s->principals[i];
        const char *name = get_string(p, "name"), *role = get_string(p, "role");
        const char *camera = get_string(p, "camera");
        const cJSON *keys = cJSON_GetObjectItemCaseSensitive(p, "keys");
        if (!name || !role || !cJSON_IsArray(keys))
            return false;
        pr->name = xstrdup(name);
        pr->role = xstrdup(role);
        pr->camera = camera ? xstrdup(camera) : NULL;
        pr->keys = xrealloc(NULL, (size_t)cJSON_GetArraySize(keys) * 32 + 1);
        for (const cJSON *k = keys->child; k; k = k->next) {
            size_t n = 0;
            unsigned char *raw = cJSON_IsString(k) && strncmp(k->valuestring, "ed25519:", 8) == 0
                                     ? b64url_decode(k->valuestring + 8, &n) : NULL;
            if (raw && n == 32)
                memcpy(pr->keys[pr->n_keys++], raw, 32);
            free(raw);
            if (n != 32)
                return false;
        }
    }
    return true;
}

/* The setup request's camera; NULL (and *why) when a field is missing or mistyped. */
static setup_t *setup_parse(const cJSON *req, const char **why)
{
    setup_t *s = xrealloc(NULL, sizeof *s);
    memset(s, 0, sizeof *s);
    const char *id = get_string(req, "camera_id"), *prefix = get_string(req, "prefix");
    const char *initial = get_string(req, "initial");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(req, "policy");
    *why = "setup needs camera_id, prefix, initial, teams, params and policy";
    if (!id || !prefix || !initial || !cJSON_IsObject(params) || !cJSON_IsObject(policy))
        goto bad;
    s->camera_id = xstrdup(id);
    s->prefix = xstrdup(prefix);
    if (!get_strings(req, "teams", &s->teams, &s->n_teams))
        goto bad;
    *why = "initial must be docked, standby or pre_buffer";
    if (strcmp(initial, "docked") == 0)
        s->initial = ST_DOCKED;
    else if (strcmp(initial, "standby") == 0)
        s->initial = ST_STANDBY;
    else if (strcmp(initial, "pre_buffer") == 0)
        s->initial = ST_PRE_BUFFER;
    else
        goto bad;
    params_t *p = &s->params;
    *why = "params must carry every camera parameter";
    if (!get_number(params, "prebuffer_s", &p->prebuffer_s) ||
        !get_number(params, "boot_s", &p->boot_s) ||
        !get_number(params, "segment_max_s", &p->segment_max_s) ||
        !get_number(params, "battery_s", &p->battery_s) ||
        !get_number(params, "record_drain", &p->record_drain) ||
        !get_number(params, "charge_rate", &p->charge_rate) ||
        !get_number(params, "low_battery_s", &p->low_battery_s) ||
        !get_number(params, "storage_s", &p->storage_s) ||
        !get_number(params, "upload_speed", &p->upload_speed))
        goto bad;
    p->buffer_audio = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(params, "buffer_audio"));
    *why = "policy needs name, activities, signals and deactivation_reasons";
    const char *name = get_string(policy, "name");
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(policy, "activities");
    if (!name || !cJSON_IsObject(acts))
        goto bad;
    s->policy.name = xstrdup(name);
    s->policy.n_activities = (size_t)cJSON_GetArraySize(acts);
    s->policy.activities = xrealloc(NULL, s->policy.n_activities * sizeof(activity_rule));
    size_t i = 0;
    for (const cJSON *a = acts->child; a; a = a->next, i++) {
        activity_rule *r = &s->policy.activities[i];
        const char *kind = get_string(a, "kind");
        r->name = xstrdup(a->string);
        r->kind = !kind || strcmp(kind, "required") == 0 ? KIND_REQUIRED
                  : strcmp(kind, "prohibited") == 0     ? KIND_PROHIBITED
                                                        : KIND_DISCRETIONARY;
        if (!get_number(a, "post_s", &r->post_s))
            r->post_s = 0.0;
    }
    if (!get_strings(policy, "signals", &s->policy.signals, &s->policy.n_signals) ||
        !get_strings(policy, "deactivation_reasons", &s->policy.reasons, &s->policy.n_reasons))
        goto bad;
    *why = "policy needs roles and max_skew_s";
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(policy, "roles");
    if (!cJSON_IsObject(roles) || !get_number(policy, "max_skew_s", &s->policy.max_skew_s))
        goto bad;
    s->policy.n_roles = (size_t)cJSON_GetArraySize(roles);
    s->policy.roles = xrealloc(NULL, s->policy.n_roles * sizeof(role_rule));
    memset(s->policy.roles, 0, s->policy.n_roles * sizeof(role_rule));
    i = 0;
    for (const cJSON *r = roles->child; r; r = r->next, i++) {
        role_rule *rule = &s->policy.roles[i];
        rule->name = xstrdup(r->string);
        rule->own_camera = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "own_camera"));
        if (!get_strings(r, "events", &rule->events, &rule->n_events))
            goto bad;
    }
    const cJSON *trust = cJSON_GetObjectItemCaseSensitive(req, "trust");
    if (trust && !cJSON_IsNull(trust) && !trust_parse(s, trust, why))
        goto bad;
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(req, "limits");
    double field = 128, open = 256, remembered = 4096, window = 3600;
    *why = "limits need max_field_bytes, max_open_activities, max_remembered, duplicate_window_s";
    if (limits && (!get_number(limits, "max_field_bytes", &field) ||
                   !get_number(limits, "max_open_activities", &open) ||
                   !get_number(limits, "max_remembered", &remembered) ||
                   !get_number(limits, "duplicate_window_s", &window)))
        goto bad;
    s->limits = (limits_t){(long)field, (long)open, (long)remembered, window};
    return s;
bad:
    setup_free(s);
    return NULL;
}

/* ------------------------------------------------------------------ nodes */

typedef struct {
    char *number; /* the node number as the host wrote it (any length, as the reference reads it) */
    setup_t *setup;
    camera_t *cam;
    bool finished; /* kept for its audit log until close (feature audit) */
} node_t;

static node_t *nodes;
static size_t n_nodes, cap_nodes;
static bool audit_agreed; /* the handshake agreed on feature "audit" */

static node_t *find_node(const char *number)
{
    for (size_t i = 0; i < n_nodes; i++)
        if (strcmp(nodes[i].number, number) == 0)
            return &nodes[i];
    return NULL;
}

static void drop_node(node_t *node)
{
    camera_free(node->cam);
    setup_free(node->setup);
    free(node->number);
    *node = nodes[--n_nodes];
}

/* ------------------------------------------------------------------ answers */

static void send(cJSON *answer)
{
    char *text = cJSON_PrintUnformatted(answer);
    cJSON_Delete(answer);
    if (!text) {
        fputs("bwc: cannot encode an answer\n", stderr);
        exit(70);
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(text);
}

/* An answer to request seq (its integer text; NULL when the request had none: -1). */
static cJSON *answer_for(const char *seq)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddItemToObject(a, "seq", cJSON_CreateRaw(seq ? seq : "-1"));
    return a;
}

static void send_error(const char *seq, const char *why)
{
    cJSON *a = answer_for(seq);
    cJSON_AddStringToObject(a, "error", why);
    send(a);
}

static void add_deadline(cJSON *a, const camera_t *cam)
{
    double at;
    if (cam && camera_deadline(cam, &at))
        cJSON_AddItemToObject(a, "deadline", json_number(at));
    else
        cJSON_AddNullToObject(a, "deadline");
}

static void send_step(const char *seq, outbox_t *out, const camera_t *cam)
{
    cJSON *a = answer_for(seq);
    cJSON *list = cJSON_AddArrayToObject(a, "publish");
    for (size_t i = 0; i < out->n; i++) {
        cJSON *p = cJSON_CreateObject();
        char *b64 = b64_encode((const unsigned char *)out->items[i].payload,
                               strlen(out->items[i].payload));
        cJSON_AddStringToObject(p, "topic", out->items[i].topic);
        cJSON_AddStringToObject(p, "payload", b64);
        cJSON_AddBoolToObject(p, "retain", out->items[i].retain);
        cJSON_AddItemToObject(p, "qos", cJSON_CreateNumber(1));
        cJSON_AddItemToArray(list, p);
        free(b64);
    }
    add_deadline(a, cam);
    outbox_clear(out);
    send(a);
}

/* The answer to hello: the features it offered that this child accepts. */
static void send_hello(const char *seq, const cJSON *offered)
{
    cJSON *a = answer_for(seq);
    cJSON_AddItemToObject(a, "protocol", cJSON_CreateNumber(PROTOCOL));
    cJSON_AddStringToObject(a, "name", camera_impl_name);
    cJSON_AddNullToObject(a, "max_cameras");
    audit_agreed = false;
    if (cJSON_GetArraySize(offered) > 0) { /* a host that offers none never sees the field */
        cJSON *accepted = cJSON_AddArrayToObject(a, "features");
        for (const cJSON *f = offered->child; f; f = f->next)
            if (cJSON_IsString(f) && strcmp(f->valuestring, "audit") == 0 && camera_keeps_audit &&
                !audit_agreed) {
                audit_agreed = true;
                cJSON_AddItemToArray(accepted, cJSON_CreateString("audit"));
            }
    }
    send(a);
}

/* ------------------------------------------------------------------ the loop */

/* An integer member as the reference reads it (its text, any length), or NULL. */
static char *integer_member(const json_doc *doc, const char *key)
{
    const cJSON *v = json_member(doc->root, key);
    if (!cJSON_IsNumber(v) || json_number_kind(doc, v, NULL) == NUM_FLOAT)
        return NULL;
    return json_integer_text(doc, v);
}

static bool is_op(const char *op, const char *name) { return strcmp(op, name) == 0; }

static bool serve(const char *line, size_t len, outbox_t *out)
{
    json_doc doc;
    char *why = NULL;
    char *seq = NULL, *number = NULL;
    bool more = true;
    if (!json_parse(&doc, (const unsigned char *)line, len, &why)) {
        send_error(NULL, "bad request: not JSON");
        free(why);
        return true;
    }
    const cJSON *req = doc.root;
    const cJSON *opv = cJSON_IsObject(req) ? json_member(req, "op") : NULL;
    const char *op = cJSON_IsString(opv) ? opv->valuestring : NULL;
    if (cJSON_IsObject(req))
        seq = integer_member(&doc, "seq");
    /* The reference answers a request it cannot decode under the seq it can read, which is
     * none when a number in it is beyond a double (it then cannot read the line at all). */
    const char *bad_seq = doc.out_of_range ? NULL : seq;
    if (!seq || !op) {
        send_error(bad_seq, "bad request: not a JSON object with an integer seq and an op");
        goto done;
    }
    bool known = is_op(op, "hello") || is_op(op, "bye") || is_op(op, "setup") || is_op(op, "start") ||
                 is_op(op, "deliver") || is_op(op, "timer") || is_op(op, "deadline") ||
                 is_op(op, "finish") || is_op(op, "audit") || is_op(op, "close");
    if (!known) {
        char *text = xprintf("bad request: unknown op '%s'", op);
        send_error(bad_seq, text);
        free(text);
        goto done;
    }
    if (is_op(op, "hello")) {
        const cJSON *protocol = json_member(req, "protocol");
        const cJSON *features = json_member(req, "features");
        if (!cJSON_IsNumber(protocol) || json_number_kind(&doc, protocol, NULL) == NUM_FLOAT ||
            (features && !cJSON_IsArray(features))) {
            send_error(bad_seq, "bad request: hello needs an integer protocol (and features: a list)");
        } else if (json_number_kind(&doc, protocol, NULL) != NUM_INT || protocol->valuedouble != PROTOCOL) {
            char *version = json_integer_text(&doc, protocol);
            char *text = xprintf("unsupported protocol %s: this child speaks %d", version, PROTOCOL);
            send_error(seq, text);
            free(text);
            free(version);
        } else {
            send_hello(seq, features);
        }
        goto done;
    }
    if (is_op(op, "bye")) {
        send(answer_for(seq));
        more = false;
        goto done;
    }
    number = integer_member(&doc, "node");
    if (!number) {
        send_error(bad_seq, "bad request: no integer node number");
        goto done;
    }
    node_t *node = find_node(number);
    if (is_op(op, "setup")) {
        const char *bad = NULL;
        setup_t *setup = setup_parse(req, &bad);
        if (!setup) {
            char *text = xprintf("bad request: %s", bad);
            send_error(bad_seq, text);
            free(text);
        } else if (node) {
            setup_free(setup);
            send_error(seq, "node already exists");
        } else {
            if (n_nodes == cap_nodes) {
                cap_nodes = cap_nodes ? 2 * cap_nodes : 8;
                nodes = xrealloc(nodes, cap_nodes * sizeof *nodes);
            }
            nodes[n_nodes++] = (node_t){number, setup, camera_new(setup), false};
            number = NULL; /* the node owns it */
            cJSON *a = answer_for(seq);
            cJSON *subs = cJSON_AddArrayToObject(a, "subscriptions");
            char *topic = xprintf("%s/%s/event", setup->prefix, setup->camera_id);
            cJSON_AddItemToArray(subs, cJSON_CreateString(topic));
            free(topic);
            for (size_t i = 0; i < setup->n_teams; i++) {
                topic = xprintf("%s/team/%s/event", setup->prefix, setup->teams[i]);
                cJSON_AddItemToArray(subs, cJSON_CreateString(topic));
                free(topic);
            }
            send(a);
        }
        goto done;
    }
    if (is_op(op, "close")) { /* a node it does not know is closed already */
        if (node)
            drop_node(node);
        send(answer_for(seq));
        goto done;
    }
    if (is_op(op, "audit")) {
        const cJSON *firstv = json_member(req, "first");
        long long first = 0;
        num_kind kind = NUM_INT;
        if (firstv && (!cJSON_IsNumber(firstv) || (kind = json_number_kind(&doc, firstv, &first)) == NUM_FLOAT)) {
            send_error(bad_seq, "bad request: first must be an integer");
        } else if (!audit_agreed) {
            send_error(seq, "feature audit was not agreed in the handshake");
        } else if (!node) {
            send_error(seq, "no such node (never set up, or closed)");
        } else {
            const char *head = NULL;
            if (kind == NUM_BIG_INT)
                first = firstv->valuedouble < 0 ? 0 : LLONG_MAX;
            char *entries = camera_audit(node->cam, first < 0 ? 0 : (size_t)first, &head);
            cJSON *a = answer_for(seq);
            cJSON_AddItemToObject(a, "entries", cJSON_CreateRaw(entries));
            cJSON_AddStringToObject(a, "head", head);
            free(entries);
            send(a);
        }
        goto done;
    }
    double now = 0.0;
    const cJSON *nowv = json_member(req, "now");
    if (!is_op(op, "deadline") && (!cJSON_IsNumber(nowv) || !isfinite(nowv->valuedouble))) {
        send_error(bad_seq, "bad request: no time (now)");
        goto done;
    }
    if (nowv)
        now = nowv->valuedouble;
    unsigned char *payload = NULL;
    size_t n = 0;
    const char *topic = NULL;
    if (is_op(op, "deliver")) {
        const cJSON *b64 = json_member(req, "payload");
        topic = cJSON_IsString(json_member(req, "topic")) ? json_member(req, "topic")->valuestring : NULL;
        payload = cJSON_IsString(b64) ? b64_decode(b64->valuestring, &n) : NULL;
        if (!topic || !payload) {
            send_error(bad_seq, "bad request: deliver needs a topic and a base64 payload");
            free(payload);
            goto done;
        }
    }
    if (!node || node->finished) {
        send_error(seq, "no such node (never set up, or finished)");
        free(payload);
        goto done;
    }
    if (is_op(op, "deadline")) {
        cJSON *a = answer_for(seq);
        add_deadline(a, node->cam);
        send(a);
    } else if (is_op(op, "start")) {
        camera_start(node->cam, now, out);
        send_step(seq, out, node->cam);
    } else if (is_op(op, "timer")) {
        camera_timer(node->cam, now, out);
        send_step(seq, out, node->cam);
    } else if (is_op(op, "deliver")) {
        camera_deliver(node->cam, now, topic, payload, n, out);
        free(payload);
        send_step(seq, out, node->cam);
    } else { /* finish: the camera is gone; with feature audit its log stays until close */
        camera_finish(node->cam, now, out);
        if (audit_agreed)
            node->finished = true;
        else
            drop_node(node);
        send_step(seq, out, NULL);
    }
done:
    free(seq);
    free(number);
    json_doc_free(&doc);
    return more;
}

static bool blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", line[i]))
            return false;
    return true;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    outbox_t out = {0};
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (!blank(line, (size_t)len) && !serve(line, (size_t)len, &out))
            break;
    }
    while (n_nodes)
        drop_node(&nodes[0]);
    free(nodes);
    free(out.items);
    free(line);
    return 0;
}
