/*
 * codec.h -- the camera's MQTT payloads (bwcsim SPEC section 5): inbound events decoded with
 * the refusal words of the spec (R-BAD), outbound acks, state, alerts and recording metadata.
 */
#ifndef BWC_CODEC_H
#define BWC_CODEC_H

#include "bwc.h"

#include <cjson/cJSON.h>

#define MAX_PAYLOAD (64 * 1024)
#define MAX_DEPTH 16  /* JSON nesting a payload may have (R-BOUND) */
#define FIELD_MAX 128 /* characters in an id or a field the camera keeps (R-BOUND) */

/* A message id: a JSON string or integer ("7" and 7 are different ids). */
typedef enum { ID_NONE, ID_STR, ID_INT } id_kind;
typedef struct {
    id_kind kind;
    char *str;
    long long num;
} msgid_t;

msgid_t msgid_copy(const msgid_t *id);
void msgid_free(msgid_t *id);
bool msgid_eq(const msgid_t *a, const msgid_t *b);

typedef enum {
    EV_ACTIVITY_START,
    EV_ACTIVITY_END,
    EV_DOCK,
    EV_UNDOCK,
    EV_BUTTON,
    EV_SIGNAL,
    EV_DEACTIVATE,
    EV_REACTIVATE
} event_type;

typedef struct {
    event_type type;
    msgid_t id;
    bool has_ts;
    double ts; /* when the activity really began (only a trigger's lateness uses it) */
    bool has_seq;
    long long seq; /* a signed command's sequence number (SPEC 14) */
    char *to;      /* the camera id or team/<team> a signed command was signed for */
    char *activity, *activity_id, *source, *reason, *actor;
    bool start; /* button: start (true) or stop */
} event_t;

/* Decode one inbound payload. true: *ev is filled (event_free it). false: *error is the NACK
 * text (free it) and *id the message id when one could be read (ID_NONE otherwise). */
bool decode_event(const unsigned char *payload, size_t len, event_t *ev, msgid_t *id, char **error);
void event_free(event_t *ev);
const char *event_name(event_type t);
/* The id of a payload that is refused before decoding (wrong topic). */
msgid_t peek_id(const unsigned char *payload, size_t len);
/* The event type a payload names, when it is a JSON object naming a known one (else NULL). */
const char *peek_type(const unsigned char *payload, size_t len);
/* Whether a payload (JSON or garbage) nests arrays and objects more than limit deep. */
bool depth_exceeds(const unsigned char *payload, size_t len, int limit);

/* A signed command (SPEC 14): {"by": principal, "sig": base64url Ed25519, "body": event JSON}. */
typedef struct {
    char *by, *sig, *body;
} envelope_t;

bool decode_envelope(const unsigned char *payload, size_t len, envelope_t *env);
void envelope_free(envelope_t *env);

/* base64 (RFC 4648, padded; NULL on malformed input) and base64url as trust files and
 * signatures write it (padding optional). Results are malloc'd; decoded data is NUL-terminated. */
char *b64_encode(const unsigned char *s, size_t n);
unsigned char *b64_decode(const char *s, size_t *n);
unsigned char *b64url_decode(const char *s, size_t *n);

/* Outbound payloads (malloc'd JSON text). */
char *encode_ack(const msgid_t *id, bool ok, const char *error);
char *encode_state(cam_state state, double since, char *const *active, size_t n_active,
                   double battery_s, double storage_s, const char *auth);
char *encode_alert(const char *kind, double at, const char *cause, const char *activity_id,
                   const double *span /* [2] or NULL */);
char *encode_recording(const char *camera, const char *recording, const char *incident,
                       double start, double end, double buffer_s, char *const *reasons,
                       size_t n_reasons, const double *segments /* pairs */, size_t n_segments,
                       bool final, bool open);

/* A JSON number that reads back as exactly the same double (cJSON's own printer rounds to
 * 15 digits when that is "close enough"; a deadline must not move by one ulp). */
cJSON *json_number(double value);

/* The camera's topics under its prefix. */
typedef struct {
    char *event, *state, *availability, *ack, *alert, *recording;
    char **team_events;
    size_t n_teams;
} topics_t;

void topics_init(topics_t *t, const setup_t *setup);
void topics_free(topics_t *t);
bool topics_is_inbound(const topics_t *t, const char *topic);

#endif
