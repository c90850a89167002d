/*
 * bwc.h -- what the two controllers (camera_naive.c, camera_fixed.c) share with the stdio
 * shell (main.c) and the payload codec (codec.c).
 *
 * The controller core is the part a firmware team owns: it is given the camera's setup, the
 * bytes that arrive on its MQTT topics and the time, and it answers with the publications to
 * make and the next time it wants to be woken. It never reads a clock and never does I/O, so
 * the same core runs on the camera (behind the real MQTT client and a real timer) and on the
 * bench (behind main.c, which speaks the bwcsim node protocol on stdin/stdout).
 */
#ifndef BWC_H
#define BWC_H

#include <stdbool.h>
#include <stddef.h>

/* ------------------------------------------------------------------ setup (node protocol) */

typedef enum { KIND_REQUIRED, KIND_PROHIBITED, KIND_DISCRETIONARY } activity_kind;

typedef struct {
    char *name;
    activity_kind kind;
    double post_s; /* recording continues this long after the activity ends */
} activity_rule;

typedef struct {
    char *name;
    char **events; /* event types the role may send */
    size_t n_events;
    bool own_camera; /* only to the camera its principal is bound to */
} role_rule;

typedef struct {
    char *name;
    activity_rule *activities;
    size_t n_activities;
    char **signals; /* device sources that start a recording */
    size_t n_signals;
    char **reasons; /* deactivation reasons allowed during a required activity */
    size_t n_reasons;
    role_rule *roles; /* who may command the camera (SPEC 14) */
    size_t n_roles;
    double max_skew_s; /* how far a command's ts may lie ahead of the camera's clock */
} policy_t;

/* One sender the camera trusts: its role, the camera it is bound to, its public keys. */
typedef struct {
    char *name, *role, *camera; /* camera: NULL unless bound to one */
    unsigned char (*keys)[32];  /* raw Ed25519 public keys */
    size_t n_keys;
} principal_t;

/* The caps of R-BOUND. */
typedef struct {
    long max_field_bytes, max_open_activities, max_remembered;
    double duplicate_window_s;
} limits_t;

typedef struct {
    double prebuffer_s, boot_s, segment_max_s, battery_s, record_drain, charge_rate,
        low_battery_s, storage_s, upload_speed;
    bool buffer_audio;
} params_t;

typedef enum { ST_DOCKED, ST_STANDBY, ST_PRE_BUFFER, ST_RECORDING, ST_OFF } cam_state;

typedef struct {
    char *camera_id;
    char **teams;
    size_t n_teams;
    cam_state initial;
    char *prefix;
    params_t params;
    policy_t policy;
    bool signed_auth; /* a trust file was provisioned: every command must be signed */
    principal_t *principals;
    size_t n_principals;
    limits_t limits;
} setup_t;

const activity_rule *policy_rule(const policy_t *policy, const char *activity);
bool policy_lists(char *const *names, size_t n, const char *name);
const char *state_name(cam_state state);

/* ------------------------------------------------------------------ publications */

typedef struct {
    char *topic;
    char *payload; /* owned, NUL-terminated JSON text (or "online") */
    bool retain;
} publication;

typedef struct {
    publication *items;
    size_t n, cap;
} outbox_t;

/* Append a publication; takes ownership of payload. */
void outbox_add(outbox_t *out, const char *topic, char *payload, bool retain);
void outbox_clear(outbox_t *out);

/* ------------------------------------------------------------------ the core */

typedef struct camera camera_t;

extern const char *const camera_impl_name;

/* The setup must outlive the camera. */
camera_t *camera_new(const setup_t *setup);
void camera_free(camera_t *cam);
/* Subscriptions are <prefix>/<camera>/event and <prefix>/team/<team>/event (main.c). */
void camera_start(camera_t *cam, double now, outbox_t *out);
void camera_deliver(camera_t *cam, double now, const char *topic, const unsigned char *payload,
                    size_t len, outbox_t *out);
void camera_timer(camera_t *cam, double now, outbox_t *out);
/* false: no deadline */
bool camera_deadline(const camera_t *cam, double *at);
void camera_finish(camera_t *cam, double now, outbox_t *out);
/* The hash-chained audit log (R-AUDIT), read by the node protocol's "audit" request: a core
 * that keeps one says so in camera_keeps_audit and returns its entries from index first on,
 * as the JSON array the protocol carries (malloc'd), and its head; a core that keeps none
 * returns NULL (main.c then declines the feature). */
extern const bool camera_keeps_audit;
char *camera_audit(const camera_t *cam, size_t first, const char **head);

/* ------------------------------------------------------------------ small helpers */

#if defined(__GNUC__)
#define BWC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BWC_PRINTF(f, a)
#endif

char *xstrdup(const char *s);
char *xprintf(const char *fmt, ...) BWC_PRINTF(1, 2);
void *xrealloc(void *p, size_t n);

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

void sv_push(strvec *sv, const char *s);
long sv_find(const strvec *sv, const char *s);
void sv_remove_at(strvec *sv, size_t i);
void sv_clear(strvec *sv);

/* Python's min/max on two floats (the first wins a tie), so the arithmetic is the reference's. */
static inline double pymin(double a, double b) { return b < a ? b : a; }
static inline double pymax(double a, double b) { return b > a ? b : a; }

#endif
