/*
 * gate.c -- origin, role and freshness checks in front of the camera (bwcsim SPEC 14).
 *
 * A camera provisioned with a trust file runs "auth: signed": every command comes as
 *
 *     {"by": "dispatch", "sig": "<base64url Ed25519 signature>", "body": "<event JSON text>"}
 *
 * and the signature covers the exact UTF-8 bytes of body. body is an ordinary event plus
 * "seq" (the sender's sequence number) and "to" (the camera id or team/<team> it was sent to).
 * Without a trust file the camera runs "auth: none" and takes events as they come.
 *
 * The checks, in order: bounds (codec.c: size, depth, field lengths); origin (the signature
 * verifies with a key of the named principal: else unauthorized); then, once the duplicate
 * table has had its say so that a redelivery still gets its first answer, role (the policy
 * lets the principal's role send this event type, an own_camera role only to its own camera,
 * the body was signed for the topic it arrived on, a deactivate names its signer as actor, an
 * activity_end comes from whoever started the activity or from dispatch) and freshness (the
 * seq is above the last one from that principal, else replayed; a ts at most max_skew_s ahead
 * of the camera's clock, else stale -- in auth none too). Refusals of messages whose origin
 * did not verify are not remembered: nobody can pre-empt a principal's message id.
 *
 * Signatures are checked with OpenSSL's libcrypto (EVP, Ed25519).
 */
#define _POSIX_C_SOURCE 200809L

#include "gate.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISPATCH "dispatch" /* the role that may end any activity */

typedef struct {
    char *aid, *by;
} starter_t;

struct gate {
    const setup_t *setup;
    bool *has_seq; /* per principal: the last sequence number seen */
    long long *last_seq;
    starter_t *starters; /* who started each open activity */
    size_t n_starters, cap_starters;
};

gate_t *gate_new(const setup_t *setup)
{
    gate_t *g = xrealloc(NULL, sizeof *g);
    memset(g, 0, sizeof *g);
    g->setup = setup;
    g->has_seq = xrealloc(NULL, (setup->n_principals + 1) * sizeof *g->has_seq);
    g->last_seq = xrealloc(NULL, (setup->n_principals + 1) * sizeof *g->last_seq);
    memset(g->has_seq, 0, (setup->n_principals + 1) * sizeof *g->has_seq);
    return g;
}

void gate_free(gate_t *g)
{
    for (size_t i = 0; i < g->n_starters; i++) {
        free(g->starters[i].aid);
        free(g->starters[i].by);
    }
    free(g->starters);
    free(g->has_seq);
    free(g->last_seq);
    free(g);
}

void admission_free(admission_t *a)
{
    if (a->admitted)
        event_free(&a->ev);
    free(a->claimed);
    msgid_free(&a->id);
    free(a->error);
    memset(a, 0, sizeof *a);
}

static long principal_index(const setup_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_principals; i++)
        if (strcmp(s->principals[i].name, name) == 0)
            return (long)i;
    return -1;
}

static bool verifies(const principal_t *p, const unsigned char *sig, size_t sig_len,
                     const unsigned char *body, size_t body_len)
{
    for (size_t k = 0; k < p->n_keys; k++) {
        EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p->keys[k], 32);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = key && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
                  EVP_DigestVerify(ctx, sig, sig_len, body, body_len) == 1;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(key);
        if (ok)
            return true;
    }
    return false;
}

static void refuse(admission_t *out, msgid_t id, char *error, bool remember)
{
    out->admitted = false;
    out->id = id;
    out->error = error;
    out->remember = remember;
}

/* The event's strings, for the byte-length check, in the reference's field order. */
static char *long_field(const event_t *ev, long limit)
{
    const char *names[] = {"activity", "activity_id", "source", "reason", "actor", "id", "to"};
    const char *values[] = {ev->activity, ev->activity_id, ev->source, ev->reason, ev->actor,
                            ev->id.kind == ID_STR ? ev->id.str : NULL, ev->to};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t size = i == 5 ? ev->id.len : values[i] ? strlen(values[i]) : 0; /* an id may hold a NUL */
        if ((long)size > limit)
            return xprintf("too_long: %s: %zu bytes > %ld", names[i], size, limit);
    }
    return NULL;
}

/* Decode an event whose origin is known (or does not matter). */
static void decoded(const gate_t *g, const unsigned char *body, size_t len, const char *sender,
                    admission_t *out)
{
    msgid_t id;
    char *error = NULL;
    if (!decode_event(body, len, &out->ev, &id, &error)) {
        refuse(out, id, error, true);
        return;
    }
    msgid_free(&id);
    char *too_long = long_field(&out->ev, g->setup->limits.max_field_bytes);
    if (too_long) {
        msgid_t short_id = {ID_NONE, NULL, 0, 0};
        if (out->ev.id.kind == ID_INT || (long)out->ev.id.len <= g->setup->limits.max_field_bytes)
            short_id = msgid_copy(&out->ev.id);
        event_free(&out->ev);
        refuse(out, short_id, too_long, true);
        return;
    }
    out->admitted = true;
    out->sender = sender;
}

void gate_admit(gate_t *g, const unsigned char *payload, size_t len, admission_t *out)
{
    memset(out, 0, sizeof *out);
    const setup_t *s = g->setup;
    envelope_t env;
    if (!decode_envelope(payload, len, &env)) { /* a bare event */
        decoded(g, payload, len, NULL, out);
        if (!s->signed_auth)
            return;
        const char *type = NULL;
        if (out->admitted) {
            type = event_name(out->ev.type);
            msgid_t id = msgid_copy(&out->ev.id);
            event_free(&out->ev);
            out->admitted = false;
            out->id = id;
        } else if (strncmp(out->error, "too_deep", 8) != 0 && strncmp(out->error, "too_long", 8) != 0 &&
                   strncmp(out->error, "payload_too_large", 17) != 0) {
            type = peek_type(payload, len); /* a command attempt is first of all unsigned */
        }
        if (type) {
            free(out->error);
            out->error = xprintf("unauthorized: unsigned %s", type);
        }
        out->remember = false;
        return;
    }
    out->claimed = xstrdup(env.by);
    const unsigned char *body = (const unsigned char *)env.body;
    size_t body_len = strlen(env.body);
    if (!s->signed_auth) { /* nothing to verify against: the body is taken as it is */
        decoded(g, body, body_len, NULL, out);
        envelope_free(&env);
        return;
    }
    size_t sig_len = 0;
    unsigned char *sig = b64url_decode(env.sig, &sig_len);
    long who = principal_index(s, env.by);
    msgid_t none = {ID_NONE, NULL, 0, 0};
    if (!sig) {
        refuse(out, none, xstrdup("unauthorized: malformed signature envelope"), false);
    } else if (who < 0) {
        refuse(out, peek_id(body, body_len), xprintf("unauthorized: unknown principal '%s'", env.by), false);
    } else if (!verifies(&s->principals[who], sig, sig_len, body, body_len)) {
        refuse(out, peek_id(body, body_len), xprintf("unauthorized: bad signature for '%s'", env.by), false);
    } else {
        decoded(g, body, body_len, s->principals[who].name, out);
    }
    free(sig);
    envelope_free(&env);
}

static const role_rule *role_of(const policy_t *p, const char *role)
{
    for (size_t i = 0; i < p->n_roles; i++)
        if (strcmp(p->roles[i].name, role) == 0)
            return &p->roles[i];
    return NULL;
}

static const starter_t *starter_of(const gate_t *g, const char *aid)
{
    for (size_t i = 0; i < g->n_starters; i++)
        if (strcmp(g->starters[i].aid, aid) == 0)
            return &g->starters[i];
    return NULL;
}

static char *entitled(const gate_t *g, const admission_t *a, const char *target, bool running)
{
    const setup_t *s = g->setup;
    const event_t *ev = &a->ev;
    const principal_t *who = &s->principals[principal_index(s, a->sender)];
    const char *type = event_name(ev->type);
    const role_rule *rule = role_of(&s->policy, who->role);
    if (!rule || !policy_lists(rule->events, rule->n_events, type))
        return xprintf("unauthorized: role %s may not send %s", who->role, type);
    if (rule->own_camera && (!who->camera || strcmp(who->camera, s->camera_id) != 0 ||
                             strcmp(target, s->camera_id) != 0))
        return xprintf("unauthorized: %s may command only its own camera (%s)", a->sender,
                       who->camera ? who->camera : "none");
    if (!ev->to || strcmp(ev->to, target) != 0)
        return xprintf("unauthorized: signed for '%s', delivered to '%s'", ev->to ? ev->to : "None",
                       target);
    if (ev->type == EV_DEACTIVATE && strcmp(ev->actor, a->sender) != 0)
        return xprintf("unauthorized: actor '%s' is not the signer '%s'", ev->actor, a->sender);
    if (ev->type == EV_ACTIVITY_END && strcmp(who->role, DISPATCH) != 0) {
        const starter_t *st = starter_of(g, ev->activity_id);
        if (st && strcmp(st->by, a->sender) != 0 && running)
            return xprintf("unauthorized: only %s (who started it) or %s may end %s", st->by,
                           DISPATCH, ev->activity_id);
    }
    return NULL;
}

char *gate_authorize(const gate_t *g, const admission_t *a, const char *target, double now,
                     bool running)
{
    const event_t *ev = &a->ev;
    if (a->sender) {
        char *error = entitled(g, a, target, running);
        if (error)
            return error;
        if (!ev->has_seq)
            return xstrdup("unauthorized: no seq (a signed command carries its sender's sequence number)");
        long who = principal_index(g->setup, a->sender);
        if (g->has_seq[who] && ev->seq <= g->last_seq[who])
            return xprintf("replayed: seq %lld <= %lld, the last from %s", ev->seq,
                           g->last_seq[who], a->sender);
    }
    double skew = g->setup->policy.max_skew_s;
    if (ev->has_ts && ev->ts > now + skew)
        return xprintf("stale: ts %g is %g s ahead of the camera's clock (max_skew_s %g)", ev->ts,
                       ev->ts - now, skew);
    return NULL;
}

void gate_record(gate_t *g, const admission_t *a, bool running)
{
    if (!a->sender)
        return;
    const event_t *ev = &a->ev;
    if (ev->has_seq) {
        long who = principal_index(g->setup, a->sender);
        g->has_seq[who] = true;
        g->last_seq[who] = ev->seq;
    }
    if (ev->type == EV_ACTIVITY_START && running && !starter_of(g, ev->activity_id)) {
        if (g->n_starters == g->cap_starters) {
            g->cap_starters = g->cap_starters ? 2 * g->cap_starters : 8;
            g->starters = xrealloc(g->starters, g->cap_starters * sizeof *g->starters);
        }
        g->starters[g->n_starters++] = (starter_t){xstrdup(ev->activity_id), xstrdup(a->sender)};
    } else if (ev->type == EV_ACTIVITY_END && !running) {
        for (size_t i = 0; i < g->n_starters; i++) {
            if (strcmp(g->starters[i].aid, ev->activity_id) == 0) {
                free(g->starters[i].aid);
                free(g->starters[i].by);
                g->starters[i] = g->starters[--g->n_starters];
                break;
            }
        }
    }
}
