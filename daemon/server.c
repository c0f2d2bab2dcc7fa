/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ft-config.h"
#include "httpreq.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"

/* Slow clients: the head of a request must arrive within this, an idle keep-alive connection lives this long. */
#define HEADER_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_MS 60000
/* A client that does not read its response is dropped after this. */
#define WRITE_TIMEOUT_MS 30000
#define MAX_WAIT_S 30
/* Room for one full request head plus a pipelined start of the next. */
#define CONN_BUF (FT_HTTP_MAX_HEADER_BYTES + 1024)
#define MAX_PEER_GROUPS 64

/* --- refcounted response bytes: a write in flight keeps them alive after a renewal --- */

struct blob {
        unsigned refs;
        bool secret;        /* holds a token: wiped on release */
        size_t len;         /* whole response */
        size_t head_len;    /* status line and headers (what HEAD sends) */
        char data[];
};

static struct blob *blob_new(size_t len, bool secret)
{
        struct blob *b = malloc(sizeof(*b) + len + 1);

        if (!b)
                return NULL;
        b->refs = 1;
        b->secret = secret;
        b->len = len;
        b->head_len = len;
        return b;
}

static struct blob *blob_ref(struct blob *b)
{
        b->refs++;
        return b;
}

static void blob_unref(struct blob *b)
{
        if (!b || --b->refs > 0)
                return;
        if (b->secret)
                ft_wipe(b->data, b->len);
        free(b);
}

/* --- access lists --- */

struct acl {
        bool set;
        uid_t uids[FT_CONFIG_MAX_IDS];
        size_t n_uids;
        gid_t gids[FT_CONFIG_MAX_IDS];
        size_t n_gids;
};

/* The rendered answers of one token, replaced at every renewal. */
struct entry {
        struct blob *json;      /* 200 application/json */
        struct blob *raw;       /* 200 text/plain: the bare token */
        int64_t second;         /* wall-clock second the JSON's expires_in was rendered for */
        struct acl acl;
};

enum conn_timer { TIMER_HEADER, TIMER_IDLE, TIMER_WRITE, TIMER_WAIT };

struct conn {
        uv_pipe_t pipe;
        uv_timer_t timer;
        uv_write_t write_req;
        struct server *server;
        struct conn *next, *prev;
        unsigned handles;          /* open libuv handles; freed when the last one closes */
        uint64_t deadline;         /* loop time (uv_now) at which the current timeout expires */

        uid_t uid;
        gid_t gid;
        gid_t groups[MAX_PEER_GROUPS];
        size_t n_groups;
        pid_t pid;

        size_t len;
        size_t high;               /* most bytes ever buffered: what is wiped at close */
        struct blob *writing;      /* the response being written */
        bool closing, close_after_write, reading;

        /* A request parked by ?wait=N until its token arrives. */
        int wait_id;
        bool wait_raw;
        struct ft_http_req wait_req;

        /* Last, so that a new connection zeroes only the fields above, not 9 KiB of buffer. */
        char buf[CONN_BUF];
};

struct server {
        uv_loop_t *loop;
        const struct ft_config *cfg;
        struct tokens *tokens;
        uv_pipe_t listener;
        bool listening, closing, bound_path;
        struct conn *conns;
        unsigned n_conns;
        struct entry entries[FT_ENGINE_MAX_NODES];
        struct acl daemon_acl;
        /* Whether any allow list is set at all: only then are a peer's credentials read. */
        bool acl_any, acl_groups;

        unsigned peak_conns;       /* since memory was last given back */

        /* Metrics. */
        uint64_t requests_by_status[600];
        uint64_t refused_connections;
};

static void send_error(struct conn *c, const struct ft_http_req *req, int status, const char *error,
                       const char *detail, int retry_after);
static void conn_process(struct conn *c);

static int resolve_acl(const struct ft_acl *in, struct acl *out, const char *where, struct ft_diag *diag)
{
        char buf[4096];

        memset(out, 0, sizeof(*out));
        out->set = in->set;
        for (size_t i = 0; i < in->n_users; i++) {
                struct passwd pw, *res = NULL;
                char *end;
                unsigned long v = strtoul(in->users[i], &end, 10);

                if (*in->users[i] && !*end) {
                        out->uids[out->n_uids++] = (uid_t)v;
                        continue;
                }
                if (getpwnam_r(in->users[i], &pw, buf, sizeof(buf), &res) != 0 || !res) {
                        ft_diag_set(diag, "%s allow_users: no user named \"%s\" on this host", where, in->users[i]);
                        return -EINVAL;
                }
                out->uids[out->n_uids++] = res->pw_uid;
        }
        for (size_t i = 0; i < in->n_groups; i++) {
                struct group gr, *res = NULL;
                char *end;
                unsigned long v = strtoul(in->groups[i], &end, 10);

                if (*in->groups[i] && !*end) {
                        out->gids[out->n_gids++] = (gid_t)v;
                        continue;
                }
                if (getgrnam_r(in->groups[i], &gr, buf, sizeof(buf), &res) != 0 || !res) {
                        ft_diag_set(diag, "%s allow_groups: no group named \"%s\" on this host", where,
                                    in->groups[i]);
                        return -EINVAL;
                }
                out->gids[out->n_gids++] = res->gr_gid;
        }
        return 0;
}

static const struct ft_acl *section_acl(const struct ft_config *cfg, const char *name)
{
        const char *dot = strchr(name, '.');

        if (!dot)
                return NULL;
        if (!strncmp(name, "jwt.", 4)) {
                for (size_t i = 0; i < cfg->n_jwts; i++)
                        if (!strcmp(cfg->jwts[i]->name, dot + 1))
                                return &cfg->jwts[i]->acl;
        } else if (!strncmp(name, "azure.", 6)) {
                for (size_t i = 0; i < cfg->n_azures; i++)
                        if (!strcmp(cfg->azures[i]->name, dot + 1))
                                return &cfg->azures[i]->acl;
        } else if (!strncmp(name, "gcp.", 4)) {
                for (size_t i = 0; i < cfg->n_gcps; i++)
                        if (!strcmp(cfg->gcps[i]->name, dot + 1))
                                return &cfg->gcps[i]->acl;
        }
        return NULL;
}

/* Each token's allow list: its section's when set there, else [daemon]'s. */
static int resolve_acls(const struct ft_config *cfg, struct tokens *t, struct acl *daemon_acl, struct entry *entries,
                        struct ft_diag *diag)
{
        int r = resolve_acl(&cfg->daemon.acl, daemon_acl, "[daemon]", diag);

        for (size_t i = 0; r >= 0 && i < tokens_count(t); i++) {
                struct token_view v;
                const struct ft_acl *a;
                char where[128];

                tokens_view(t, (int)i, &v);
                a = section_acl(cfg, v.name);
                snprintf(where, sizeof(where), "[%s]", v.name);
                if (a && a->set)
                        r = resolve_acl(a, &entries[i].acl, where, diag);
                else
                        entries[i].acl = *daemon_acl;
        }
        return r;
}

static void acl_needs(const struct acl *daemon_acl, const struct entry *entries, size_t n, bool *ret_any,
                      bool *ret_groups)
{
        bool any = daemon_acl->set, groups = daemon_acl->n_gids > 0;

        for (size_t i = 0; i < n; i++) {
                any = any || entries[i].acl.set;
                groups = groups || entries[i].acl.n_gids > 0;
        }
        *ret_any = any;
        *ret_groups = groups;
}

int server_new(uv_loop_t *loop, const struct ft_config *cfg, struct tokens *t, struct server **ret,
               struct ft_diag *diag)
{
        struct server *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->cfg = cfg;
        s->tokens = t;
        r = resolve_acls(cfg, t, &s->daemon_acl, s->entries, diag);
        if (r < 0) {
                free(s);
                return r;
        }
        acl_needs(&s->daemon_acl, s->entries, tokens_count(t), &s->acl_any, &s->acl_groups);
        *ret = s;
        return 0;
}

int server_reload(struct server *s, const struct ft_config *cfg, struct tokens *t, struct ft_diag *diag)
{
        struct entry *fresh = calloc(FT_ENGINE_MAX_NODES, sizeof(*fresh));
        struct acl daemon_acl;
        int r;

        if (!fresh)
                return -ENOMEM;
        /* Resolve everything first: a reload that fails leaves the running server untouched. */
        r = resolve_acls(cfg, t, &daemon_acl, fresh, diag);
        if (r < 0) {
                free(fresh);
                return r;
        }
        for (size_t i = 0; i < FT_ELEMENTSOF(s->entries); i++) {
                blob_unref(s->entries[i].json);
                blob_unref(s->entries[i].raw);
                s->entries[i] = fresh[i];
        }
        free(fresh);
        /* Requests parked on a token follow it by name into the new set, or are answered now. */
        for (struct conn *c = s->conns; c; c = c->next) {
                struct token_view v;
                if (c->wait_id < 0)
                        continue;
                tokens_view(s->tokens, c->wait_id, &v);
                c->wait_id = tokens_find(t, v.name);
                if (c->wait_id < 0)
                        c->wait_id = -2;   /* answered below, once the swap is done */
        }
        s->daemon_acl = daemon_acl;
        s->cfg = cfg;
        s->tokens = t;
        acl_needs(&s->daemon_acl, s->entries, tokens_count(t), &s->acl_any, &s->acl_groups);
        for (struct conn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->wait_id == -2) {
                        c->wait_id = -1;
                        send_error(c, &c->wait_req, 404, "not_found", "the token was removed by a reload", 0);
                        if (!c->closing && !c->writing)
                                conn_process(c);
                }
        }
        return 0;
}

unsigned server_connections(const struct server *s)
{
        return s->n_conns;
}

/*
 * Root may read everything (it could read our memory anyway). Without any
 * allow list, whoever can open the socket (its mode and group) may read.
 */
static bool acl_allows(const struct acl *a, const struct conn *c)
{
        if (c->uid == 0 || !a->set)
                return true;
        for (size_t i = 0; i < a->n_uids; i++)
                if (a->uids[i] == c->uid)
                        return true;
        for (size_t i = 0; i < a->n_gids; i++) {
                if (a->gids[i] == c->gid)
                        return true;
                for (size_t k = 0; k < c->n_groups; k++)
                        if (a->gids[i] == c->groups[k])
                                return true;
        }
        return false;
}

/* --- rendering --- */

static const char *reason_phrase(int status)
{
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
        }
}

/* A whole response: status line, headers (extra ends with CRLF or is ""), body. */
static struct blob *render_response(int status, const char *ctype, const char *extra, const char *body,
                                    size_t body_len, bool secret)
{
        char head[512];
        struct blob *b;
        int n;

        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
                     status, reason_phrase(status), ctype, body_len, extra ? extra : "");
        if (n < 0 || (size_t)n >= sizeof(head))
                return NULL;
        b = blob_new((size_t)n + body_len, secret);
        if (!b)
                return NULL;
        memcpy(b->data, head, (size_t)n);
        if (body_len)
                memcpy(b->data + n, body, body_len);
        b->data[b->len] = '\0';
        b->head_len = (size_t)n;
        return b;
}

static struct blob *render_json(int status, cJSON *obj, const char *extra)
{
        struct blob *b = NULL;
        char *text = cJSON_PrintUnformatted(obj);

        if (text) {
                size_t len = strlen(text);
                text[len] = '\0';
                b = render_response(status, "application/json", extra, text, len, false);
                free(text);
        }
        return b;
}

static struct blob *render_error(int status, const char *error, const char *detail, int retry_after)
{
        cJSON *o = cJSON_CreateObject();
        char extra[64] = "";
        struct blob *b;

        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "error", error);
        cJSON_AddStringToObject(o, "detail", detail);
        if (retry_after > 0)
                snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", retry_after);
        else if (status == 405)
                snprintf(extra, sizeof(extra), "Allow: GET, HEAD\r\n");
        b = render_json(status, o, extra);
        cJSON_Delete(o);
        return b;
}

static void add_time(cJSON *o, const char *key, int64_t t)
{
        char s[21];

        if (t <= 0) {
                cJSON_AddNullToObject(o, key);
                return;
        }
        ft_time_format_rfc3339(t, s);
        cJSON_AddStringToObject(o, key, s);
}

static void add_audience(cJSON *o, const struct ft_jwt *c)
{
        if (c->n_aud == 1) {
                cJSON_AddStringToObject(o, "audience", c->aud[0]);
                return;
        }
        cJSON *a = cJSON_AddArrayToObject(o, "audience");
        for (size_t i = 0; a && i < c->n_aud; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(c->aud[i]));
}

/*
 * The JSON answer for a token. It holds the secret: cJSON's own buffers are
 * wiped before they are freed.
 */
static struct blob *render_token_json(const struct token_view *v, int64_t now_s)
{
        const char *dot = strchr(v->name, '.');
        cJSON *o = cJSON_CreateObject();
        cJSON *tok;
        struct blob *b = NULL;
        char *text;

        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "name", dot ? dot + 1 : v->name);
        if (v->kind == FT_NODE_JWT) {
                tok = cJSON_AddStringToObject(o, "token", v->value);
        } else {
                cJSON_AddStringToObject(o, "kind", v->kind == FT_NODE_AZURE ? "azure" : "gcp");
                tok = cJSON_AddStringToObject(o, "access_token", v->value);
                cJSON_AddStringToObject(o, "token_type", v->token_type ? v->token_type : "Bearer");
        }
        add_time(o, "expires_at", v->expires);
        cJSON_AddNumberToObject(o, "expires_in", (double)(v->expires - now_s));
        if (v->kind == FT_NODE_JWT && v->claims) {
                cJSON_AddStringToObject(o, "issuer", v->claims->iss ? v->claims->iss : "");
                cJSON_AddStringToObject(o, "subject", v->claims->sub ? v->claims->sub : "");
                add_audience(o, v->claims);
        }
        text = cJSON_PrintUnformatted(o);
        if (text) {
                size_t len = strlen(text);
                b = render_response(200, "application/json", NULL, text, len, true);
                ft_wipe(text, len);
                free(text);
        }
        if (tok && tok->valuestring)
                ft_wipe(tok->valuestring, strlen(tok->valuestring));
        cJSON_Delete(o);
        return b;
}

/* Bring the entry of `id` up to date; NULL entry blobs when the token is not servable. */
static void refresh_entry(struct server *s, int id, int64_t now_s, bool force)
{
        struct entry *e = &s->entries[id];
        struct token_view v;

        if (!force && e->json && e->second == now_s)
                return;
        tokens_view(s->tokens, id, &v);
        blob_unref(e->json);
        e->json = NULL;
        if (force) {
                blob_unref(e->raw);
                e->raw = NULL;
        }
        e->second = now_s;
        if (!v.value || v.kind == FT_NODE_AWS_CREDS) {
                blob_unref(e->raw);
                e->raw = NULL;
                return;
        }
        e->json = render_token_json(&v, now_s);
        if (!e->raw)
                e->raw = render_response(200, "text/plain", NULL, v.value, v.len, true);
}

/* --- connections --- */

static void conn_close(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/*
 * After a flood of connections has drained, give the freed connection
 * buffers back to the system: glibc keeps them in the heap otherwise, and a
 * burst of 10,000 clients would leave ~100 MiB behind for good.
 */
#define TRIM_AFTER_PEAK 512
#define TRIM_BELOW 16

static void on_conn_handle_closed(uv_handle_t *h)
{
        struct conn *c = h->data;
        struct server *s = c->server;

        if (--c->handles == 0) {
                ft_wipe(c->buf, c->high);
                free(c);
                if (s->peak_conns >= TRIM_AFTER_PEAK && s->n_conns < TRIM_BELOW) {
                        s->peak_conns = s->n_conns;
                        (void)malloc_trim(0);
                }
        }
}

static void conn_close(struct conn *c)
{
        struct server *s = c->server;

        if (c->closing)
                return;
        c->closing = true;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
        uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *t);

/*
 * Set the connection's timeout. Moving a deadline later (every request of a
 * keep-alive client) only writes a number: the timer, when it fires early,
 * re-arms itself for the rest. Only an earlier deadline touches the timer.
 */
static void conn_arm(struct conn *c, enum conn_timer kind, uint64_t ms)
{
        uint64_t now = uv_now(c->server->loop);

        (void)kind;
        c->deadline = now + ms;
        if (uv_is_active((uv_handle_t *)&c->timer) && uv_timer_get_due_in(&c->timer) <= ms)
                return;
        uv_timer_stop(&c->timer);
        (void)uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

/*
 * After a response: an idle keep-alive connection gets the idle timeout,
 * but one with the start of another request already buffered gets the
 * header timeout, so a head dripped in behind a pipelined request cannot
 * hold the connection longer than any other slow head.
 */
static void conn_arm_between_requests(struct conn *c)
{
        if (c->len > 0)
                conn_arm(c, TIMER_HEADER, HEADER_TIMEOUT_MS);
        else
                conn_arm(c, TIMER_IDLE, IDLE_TIMEOUT_MS);
}

static void count_status(struct server *s, int status)
{
        if (status >= 0 && status < (int)FT_ELEMENTSOF(s->requests_by_status))
                s->requests_by_status[status]++;
}

static void on_write_done(uv_write_t *req, int status)
{
        struct conn *c = req->data;

        blob_unref(c->writing);
        c->writing = NULL;
        if (c->closing)
                return;
        if (status < 0 || c->close_after_write) {
                conn_close(c);
                return;
        }
        conn_arm_between_requests(c);
        conn_process(c);
}

/*
 * Send a response (taking a reference on `b` while it is written). The hot
 * path: one non-blocking write of pre-rendered bytes, which almost always
 * completes at once; only what the socket did not take is queued, and then
 * nothing more is read from this client until it has taken it (one write at
 * a time per connection keeps responses in order and memory bounded).
 */
static void conn_send(struct conn *c, struct blob *b, bool head_only, int status)
{
        uv_buf_t buf;
        int n;

        count_status(c->server, status);
        if (!b) {
                /* Out of memory while rendering: the client gets a closed connection, not garbage. */
                conn_close(c);
                return;
        }
        buf = uv_buf_init(b->data, (unsigned)(head_only ? b->head_len : b->len));
        n = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
        if (n == (int)buf.len) {
                if (c->close_after_write)
                        conn_close(c);
                else
                        conn_arm_between_requests(c);
                return;
        }
        if (n < 0 && n != UV_EAGAIN) {
                conn_close(c);
                return;
        }
        if (n > 0) {
                buf.base += n;
                buf.len -= (unsigned)n;
        }
        c->writing = blob_ref(b);
        c->write_req.data = c;
        conn_arm(c, TIMER_WRITE, WRITE_TIMEOUT_MS);
        if (uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &buf, 1, on_write_done) < 0) {
                blob_unref(c->writing);
                c->writing = NULL;
                conn_close(c);
        }
}

static void send_error(struct conn *c, const struct ft_http_req *req, int status, const char *error,
                       const char *detail, int retry_after)
{
        struct blob *b = render_error(status, error, detail, retry_after);

        conn_send(c, b, req && req->method == FT_HTTP_HEAD, status);
        blob_unref(b);
}

/* "kind.name" into out; false when it does not fit, and then no such token exists. */
static bool join_name(char *out, size_t outsize, const char *kind, const char *name)
{
        size_t k = strlen(kind), n = strlen(name);

        if (k + 1 + n >= outsize)
                return false;
        memcpy(out, kind, k);
        out[k] = '.';
        memcpy(out + k + 1, name, n + 1);
        return true;
}

/* The node a /v1/token/NAME or /v1/jwt/NAME path names, or -1. On the hot path: no formatting. */
static int find_token(const struct server *s, const char *prefix, const char *name)
{
        char full[128];
        int id;

        if (!strcmp(prefix, "token")) {
                id = join_name(full, sizeof(full), "azure", name) ? tokens_find(s->tokens, full) : -1;
                if (id >= 0)
                        return id;
                return join_name(full, sizeof(full), "gcp", name) ? tokens_find(s->tokens, full) : -1;
        }
        return join_name(full, sizeof(full), "jwt", name) ? tokens_find(s->tokens, full) : -1;
}

/* Seconds until the next attempt, for Retry-After (at least 1). */
static int retry_after_of(const struct token_view *v, int64_t now_ms)
{
        int64_t next = v->status.next_fetch_wall_ms;
        int64_t s = next > now_ms ? (next - now_ms + 999) / 1000 : 1;

        return s < 1 ? 1 : s > 3600 ? 3600 : (int)s;
}

static void serve_token(struct conn *c, const struct ft_http_req *req, int id, bool raw, bool parked)
{
        struct server *s = c->server;
        struct entry *e = &s->entries[id];
        int64_t now_ms = now_wall_ms();
        struct blob *b;

        refresh_entry(s, id, now_ms / 1000, false);
        b = raw ? e->raw : e->json;
        if (b && tokens_servable(s->tokens, id, now_ms)) {
                conn_send(c, b, req->method == FT_HTTP_HEAD, 200);
                return;
        }
        {
                struct token_view v;
                char detail[1400];
                char wait_s[16];

                tokens_view(s->tokens, id, &v);
                if (!parked && ft_http_query_get(req->query, "wait", wait_s, sizeof(wait_s)) == 0 &&
                    v.status.state == FT_NODE_PENDING) {
                        int n = atoi(wait_s);
                        c->wait_id = id;
                        c->wait_raw = raw;
                        c->wait_req = *req;
                        conn_arm(c, TIMER_WAIT, (uint64_t)n * 1000);
                        return;
                }
                if (v.status.last_error && v.status.ok_count > 0 && v.status.failing_since_wall_ms) {
                        char since[21];
                        ft_time_format_rfc3339(v.status.failing_since_wall_ms / 1000, since);
                        snprintf(detail, sizeof(detail),
                                 "%s expired (or is too close to expiry to hand out); upstream failing since %s: %s",
                                 v.name, since, v.status.last_error->msg);
                } else if (v.status.last_error)
                        snprintf(detail, sizeof(detail), "%s has no valid token: %s", v.name, v.status.last_error->msg);
                else if (v.status.state == FT_NODE_PENDING)
                        snprintf(detail, sizeof(detail), "%s has not been obtained yet", v.name);
                else
                        snprintf(detail, sizeof(detail), "%s has no token with enough time left", v.name);
                send_error(c, req, 503, "unavailable", detail, retry_after_of(&v, now_ms));
        }
}

static struct blob *render_status(struct server *s)
{
        int64_t now_ms = now_wall_ms();
        cJSON *o = cJSON_CreateObject(), *arr;
        struct blob *b;

        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "version", FT_VERSION);
        cJSON_AddStringToObject(o, "credentials", tokens_creds_kind(s->tokens));
        arr = cJSON_AddArrayToObject(o, "tokens");
        for (size_t i = 0; arr && i < tokens_count(s->tokens); i++) {
                static const char *const states[] = { "pending", "fresh", "stale", "failing" };
                static const char *const kinds[] = { "aws", "jwt", "azure", "gcp" };
                struct token_view v;
                cJSON *t = cJSON_CreateObject();

                if (!t)
                        break;
                tokens_view(s->tokens, (int)i, &v);
                cJSON_AddStringToObject(t, "name", v.name);
                cJSON_AddStringToObject(t, "kind", kinds[v.kind]);
                cJSON_AddStringToObject(t, "state", states[v.status.state]);
                add_time(t, "expires_at", v.expires);
                if (v.expires)
                        cJSON_AddNumberToObject(t, "expires_in", (double)(v.expires - now_ms / 1000));
                else
                        cJSON_AddNullToObject(t, "expires_in");
                add_time(t, "next_refresh_at", v.status.next_fetch_wall_ms / 1000);
                if (v.status.last_error) {
                        cJSON_AddStringToObject(t, "last_error", v.status.last_error->msg);
                        cJSON_AddStringToObject(t, "error_code", v.status.last_error->code);
                } else {
                        cJSON_AddNullToObject(t, "last_error");
                        cJSON_AddNullToObject(t, "error_code");
                }
                add_time(t, "failing_since", v.status.failing_since_wall_ms / 1000);
                if (v.fingerprint[0])
                        cJSON_AddStringToObject(t, "fingerprint", v.fingerprint);
                else
                        cJSON_AddNullToObject(t, "fingerprint");
                cJSON_AddNumberToObject(t, "refreshes_ok", v.status.ok_count);
                cJSON_AddNumberToObject(t, "refreshes_failed", v.status.fail_count);
                cJSON_AddItemToArray(arr, t);
        }
        b = render_json(200, o, NULL);
        cJSON_Delete(o);
        return b;
}

static struct blob *render_health(struct server *s)
{
        int64_t now_ms = now_wall_ms();
        struct ft_strbuf out = { .max = 1 << 20 };
        bool ok = true;
        struct blob *b;

        for (size_t i = 0; i < tokens_count(s->tokens); i++) {
                struct token_view v;

                tokens_view(s->tokens, (int)i, &v);
                if (v.kind == FT_NODE_AWS_CREDS || tokens_servable(s->tokens, (int)i, now_ms))
                        continue;
                ok = false;
                ft_strbuf_printf(&out, "%s: %s\n", v.name,
                                 v.status.last_error ? v.status.last_error->msg : "not obtained yet");
        }
        if (ok)
                ft_strbuf_puts(&out, "ok\n");
        if (out.oom) {
                ft_strbuf_done(&out);
                return NULL;
        }
        b = render_response(ok ? 200 : 503, "text/plain; charset=utf-8", NULL, out.p ? out.p : "", out.len,
                            false);
        ft_strbuf_done(&out);
        return b;
}

static void metric_escape(struct ft_strbuf *o, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        ft_strbuf_append(o, "\\", 1);
                if (*s == '\n')
                        ft_strbuf_puts(o, "\\n");
                else
                        ft_strbuf_append(o, s, 1);
        }
}

static struct blob *render_metrics(struct server *s)
{
        static const char *const kinds[] = { "aws", "jwt", "azure", "gcp" };
        static const char *const upstreams[] = { "aws", "sts", "entra", "gcp" };
        struct ft_strbuf o = { .max = 4 << 20 };
        int64_t now_ms = now_wall_ms();
        struct blob *b;

        ft_strbuf_puts(&o, "# HELP fedtokend_token_expiry_seconds Seconds until the token expires (negative: expired).\n"
                           "# TYPE fedtokend_token_expiry_seconds gauge\n");
        for (size_t i = 0; i < tokens_count(s->tokens); i++) {
                struct token_view v;
                tokens_view(s->tokens, (int)i, &v);
                if (!v.expires)
                        continue;
                ft_strbuf_puts(&o, "fedtokend_token_expiry_seconds{token=\"");
                metric_escape(&o, v.name);
                ft_strbuf_printf(&o, "\",kind=\"%s\"} %lld\n", kinds[v.kind], (long long)(v.expires - now_ms / 1000));
        }
        ft_strbuf_puts(&o, "# HELP fedtokend_token_servable 1 when the token can be handed out now.\n"
                           "# TYPE fedtokend_token_servable gauge\n");
        for (size_t i = 0; i < tokens_count(s->tokens); i++) {
                struct token_view v;
                tokens_view(s->tokens, (int)i, &v);
                ft_strbuf_puts(&o, "fedtokend_token_servable{token=\"");
                metric_escape(&o, v.name);
                ft_strbuf_printf(&o, "\"} %d\n", tokens_servable(s->tokens, (int)i, now_ms) ? 1 : 0);
        }
        ft_strbuf_puts(&o, "# HELP fedtokend_refreshes_total Token fetches by result.\n"
                           "# TYPE fedtokend_refreshes_total counter\n");
        for (size_t i = 0; i < tokens_count(s->tokens); i++) {
                struct token_view v;
                tokens_view(s->tokens, (int)i, &v);
                ft_strbuf_puts(&o, "fedtokend_refreshes_total{token=\"");
                metric_escape(&o, v.name);
                ft_strbuf_printf(&o, "\",result=\"ok\"} %u\n", v.status.ok_count);
                ft_strbuf_puts(&o, "fedtokend_refreshes_total{token=\"");
                metric_escape(&o, v.name);
                ft_strbuf_printf(&o, "\",result=\"error\"} %u\n", v.status.fail_count);
        }
        ft_strbuf_puts(&o, "# HELP fedtokend_upstream_request_duration_seconds Time to complete one fetch, by upstream.\n"
                           "# TYPE fedtokend_upstream_request_duration_seconds histogram\n");
        for (int k = 0; k < 4; k++) {
                const struct tokens_latency *l = tokens_latency(s->tokens, (enum ft_node_kind)k);
                uint64_t cum = 0;
                for (size_t bi = 0; bi < TOKENS_LATENCY_BUCKETS; bi++) {
                        cum += l->buckets[bi];
                        ft_strbuf_printf(&o, "fedtokend_upstream_request_duration_seconds_bucket{upstream=\"%s\",le=\"%g\"} %llu\n",
                                         upstreams[k], tokens_latency_bounds[bi], (unsigned long long)cum);
                }
                ft_strbuf_printf(&o, "fedtokend_upstream_request_duration_seconds_bucket{upstream=\"%s\",le=\"+Inf\"} %llu\n",
                                 upstreams[k], (unsigned long long)l->count);
                ft_strbuf_printf(&o, "fedtokend_upstream_request_duration_seconds_sum{upstream=\"%s\"} %.6f\n",
                                 upstreams[k], l->sum_s);
                ft_strbuf_printf(&o, "fedtokend_upstream_request_duration_seconds_count{upstream=\"%s\"} %llu\n",
                                 upstreams[k], (unsigned long long)l->count);
        }
        ft_strbuf_puts(&o, "# HELP fedtokend_http_requests_total Socket API requests by response status.\n"
                           "# TYPE fedtokend_http_requests_total counter\n");
        for (size_t st = 0; st < FT_ELEMENTSOF(s->requests_by_status); st++)
                if (s->requests_by_status[st])
                        ft_strbuf_printf(&o, "fedtokend_http_requests_total{status=\"%zu\"} %llu\n", st,
                                         (unsigned long long)s->requests_by_status[st]);
        ft_strbuf_printf(&o, "# HELP fedtokend_connections_open Open client connections.\n"
                             "# TYPE fedtokend_connections_open gauge\nfedtokend_connections_open %u\n"
                             "# HELP fedtokend_connections_refused_total Connections closed at once (limit reached).\n"
                             "# TYPE fedtokend_connections_refused_total counter\nfedtokend_connections_refused_total %llu\n",
                         s->n_conns, (unsigned long long)s->refused_connections);
        if (o.oom) {
                ft_strbuf_done(&o);
                return NULL;
        }
        b = render_response(200, "text/plain; version=0.0.4; charset=utf-8", NULL, o.p, o.len, false);
        ft_strbuf_done(&o);
        return b;
}

static void serve_dynamic(struct conn *c, const struct ft_http_req *req, struct blob *b)
{
        int status = b ? atoi(b->data + 9) : 500;

        conn_send(c, b, req->method == FT_HTTP_HEAD, status);
        blob_unref(b);
}

/* One parsed request: route, check access, answer. */
static void handle(struct conn *c, const struct ft_http_req *req)
{
        struct server *s = c->server;
        const char *name = NULL, *prefix = NULL;
        char format[16], wait_s[16], detail[FT_HTTP_MAX_PATH + 128];
        bool raw = req->accept_text;
        int id, has_format, has_wait;

        if (req->method == FT_HTTP_OTHER) {
                send_error(c, req, 405, "method_not_allowed", "only GET and HEAD are served", 0);
                return;
        }
        if (!strncmp(req->path, "/v1/token/", 10)) {
                prefix = "token";
                name = req->path + 10;
        } else if (!strncmp(req->path, "/v1/jwt/", 8)) {
                prefix = "jwt";
                name = req->path + 8;
        }
        if (!prefix) {
                if (!acl_allows(&s->daemon_acl, c)) {
                        snprintf(detail, sizeof(detail), "uid %u may not read %s", (unsigned)c->uid, req->path);
                        log_full(LOG_NOTICE, NULL, "refused %s to uid %u (pid %d)", req->path, (unsigned)c->uid,
                                 (int)c->pid);
                        send_error(c, req, 403, "forbidden", detail, 0);
                } else if (!strcmp(req->path, "/v1/status")) {
                        serve_dynamic(c, req, render_status(s));
                } else if (!strcmp(req->path, "/healthz")) {
                        serve_dynamic(c, req, render_health(s));
                } else if (!strcmp(req->path, "/metrics")) {
                        serve_dynamic(c, req, render_metrics(s));
                } else {
                        send_error(c, req, 404, "not_found", "no such endpoint; see fedtokend(8)", 0);
                }
                return;
        }
        has_format = ft_http_query_get(req->query, "format", format, sizeof(format));
        has_wait = ft_http_query_get(req->query, "wait", wait_s, sizeof(wait_s));
        if (has_format == -EINVAL || has_wait == -EINVAL) {
                send_error(c, req, 400, "bad_request", "malformed query string", 0);
                return;
        }
        if (has_format == 0) {
                if (!strcmp(format, "raw")) {
                        raw = true;
                } else if (!strcmp(format, "json")) {
                        raw = false;
                } else {
                        send_error(c, req, 400, "bad_request", "format must be raw or json", 0);
                        return;
                }
        }
        if (has_wait == 0) {
                char *end;
                long n = strtol(wait_s, &end, 10);
                if (!*wait_s || *end || n < 0 || n > MAX_WAIT_S) {
                        send_error(c, req, 400, "bad_request", "wait must be a number of seconds from 0 to 30", 0);
                        return;
                }
        }
        id = *name ? find_token(s, prefix, name) : -1;
        if (id < 0) {
                snprintf(detail, sizeof(detail), "no %s named \"%.64s\" is configured",
                         !strcmp(prefix, "jwt") ? "[jwt.NAME] token" : "[azure.NAME] or [gcp.NAME] token", name);
                send_error(c, req, 404, "not_found", detail, 0);
                return;
        }
        if (!acl_allows(&s->entries[id].acl, c)) {
                struct token_view v;
                tokens_view(s->tokens, id, &v);
                snprintf(detail, sizeof(detail), "uid %u may not read %s", (unsigned)c->uid, v.name);
                log_full(LOG_NOTICE, &(struct log_ctx){ .token = v.name }, "refused to uid %u (pid %d)",
                         (unsigned)c->uid, (int)c->pid);
                send_error(c, req, 403, "forbidden", detail, 0);
                return;
        }
        serve_token(c, req, id, raw, false);
}

/* The JSON error of a request the parser refused, by status. */
static const char *refusal_error(int status)
{
        switch (status) {
        case 413: return "body_not_allowed";
        case 414: return "uri_too_long";
        case 431: return "headers_too_large";
        case 505: return "http_version_not_supported";
        default: return "bad_request";
        }
}

static const char *refusal_detail(int status)
{
        switch (status) {
        case 413: return "requests carry no body: the API is GET only";
        case 414: return "the request line is too long";
        case 431: return "the request head is too large (at most 8 KiB, 32 headers)";
        case 505: return "only HTTP/1.0 and HTTP/1.1 are served";
        default: return "malformed HTTP request";
        }
}

/* Answer every complete request in the buffer, one response at a time. */
static void conn_process(struct conn *c)
{
        while (!c->closing && !c->writing && c->wait_id < 0 && c->len > 0) {
                struct ft_http_req req;
                int status = 0;
                int n = ft_http_parse(c->buf, c->len, &req, &status);

                if (n == 0) {
                        if (c->len >= sizeof(c->buf)) {
                                c->close_after_write = true;
                                send_error(c, NULL, 431, "headers_too_large", "request head too large", 0);
                                return;
                        }
                        /* Only the start of a request is buffered: read on (below) for the rest. */
                        break;
                }
                if (n < 0) {
                        c->close_after_write = true;
                        send_error(c, NULL, status, refusal_error(status), refusal_detail(status), 0);
                        return;
                }
                memmove(c->buf, c->buf + n, c->len - (size_t)n);
                c->len -= (size_t)n;
                if (!req.keep_alive)
                        c->close_after_write = true;
                handle(c, &req);
        }
        if (!c->closing && !c->reading && c->len < sizeof(c->buf)) {
                /* Room again: resume reading (stopped while the buffer was full). */
                c->reading = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0;
        }
}

static void on_conn_timer(uv_timer_t *t)
{
        struct conn *c = t->data;
        uint64_t now = uv_now(c->server->loop);

        if (now < c->deadline) {
                /* The deadline moved on since the timer was set: sleep for the rest. */
                (void)uv_timer_start(&c->timer, on_conn_timer, c->deadline - now, 0);
                return;
        }
        if (c->wait_id >= 0) {
                int id = c->wait_id;
                c->wait_id = -1;
                serve_token(c, &c->wait_req, id, c->wait_raw, true);
                if (!c->closing && !c->writing)
                        conn_process(c);
                return;
        }
        /* Header, idle or write timeout: a slow or silent client loses its connection. */
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct conn *c = h->data;

        *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct conn *c = stream->data;

        if (nread < 0) {
                conn_close(c);
                return;
        }
        if (nread == 0)
                return;
        if (c->len == 0 && !c->writing && c->wait_id < 0)
                conn_arm(c, TIMER_HEADER, HEADER_TIMEOUT_MS);
        c->len += (size_t)nread;
        if (c->len > c->high)
                c->high = c->len;
        if (c->len >= sizeof(c->buf)) {
                /* Full: stop reading until responses drain it (a pipelining client waits). */
                uv_read_stop(stream);
                c->reading = false;
        }
        conn_process(c);
}

static void read_peer(struct conn *c)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        uv_os_fd_t fd;

        c->uid = (uid_t)-1;
        c->gid = (gid_t)-1;
        /* Without allow lists the socket's own mode decides: no system call per connection for nothing. */
        if (!c->server->acl_any)
                return;
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
                return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                c->uid = cred.uid;
                c->gid = cred.gid;
                c->pid = cred.pid;
        }
#ifdef SO_PEERGROUPS
        if (!c->server->acl_groups)
                return;
        len = sizeof(c->groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
                c->n_groups = len / sizeof(gid_t);
#endif
}

static void on_connection(uv_stream_t *listener, int status)
{
        struct server *s = listener->data;
        struct conn *c;

        if (status < 0 || s->closing)
                return;
        c = malloc(sizeof(*c));
        if (!c)
                return;
        memset(c, 0, offsetof(struct conn, buf));
        c->server = s;
        c->wait_id = -1;
        if (uv_pipe_init(s->loop, &c->pipe, 0) < 0) {
                free(c);
                return;
        }
        c->pipe.data = c;
        c->handles = 1;
        if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
                uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
                return;
        }
        if (uv_timer_init(s->loop, &c->timer) < 0) {
                uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
                return;
        }
        c->timer.data = c;
        c->handles = 2;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        if (s->n_conns > s->peak_conns)
                s->peak_conns = s->n_conns;
        if (s->n_conns > (unsigned)s->cfg->daemon.max_connections) {
                /* Over the limit: close at once, so a flood costs one accept each and nothing more. */
                s->refused_connections++;
                conn_close(c);
                return;
        }
        read_peer(c);
        conn_arm(c, TIMER_HEADER, HEADER_TIMEOUT_MS);
        c->reading = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0;
        if (!c->reading)
                conn_close(c);
}

void server_token_changed(struct server *s, int id)
{
        if (id < 0 || (size_t)id >= tokens_count(s->tokens))
                return;
        refresh_entry(s, id, now_wall_ms() / 1000, true);
        for (struct conn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->wait_id == id && tokens_servable(s->tokens, id, now_wall_ms())) {
                        c->wait_id = -1;
                        serve_token(c, &c->wait_req, id, c->wait_raw, true);
                        if (!c->closing && !c->writing)
                                conn_process(c);
                }
        }
}

/* --- listening --- */

/* A socket file left by a dead daemon answers nothing: remove it. A live one, or anything else, is refused. */
static int remove_stale_socket(const char *path, struct ft_diag *diag)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                ft_diag_set(diag, "%s exists and is not a socket: remove it or choose another [daemon] socket", path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0) {
                ft_diag_set(diag, "another fedtokend is already listening on %s", path);
                return -EADDRINUSE;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int bind_path(struct server *s, struct ft_diag *diag)
{
        const struct ft_config_daemon *d = &s->cfg->daemon;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(d->socket);
        mode_t old;
        int fd, r;

        if (len >= sizeof(sa.sun_path)) {
                ft_diag_set(diag, "socket path %s is longer than %zu bytes", d->socket, sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        r = remove_stale_socket(d->socket, diag);
        if (r < 0) {
                if (!diag->msg[0])
                        ft_diag_set(diag, "cannot remove the stale socket %s: %s", d->socket, strerror(-r));
                return r;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, d->socket, len + 1);
        /* The mode is set by the umask at bind time, so there is no moment with a wider one. */
        old = umask(~(mode_t)d->socket_mode & 0777);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0) {
                r = -errno;
                close(fd);
                ft_diag_set(diag, "cannot bind %s: %s", d->socket, strerror(-r));
                return r;
        }
        s->bound_path = true;
        if (d->socket_group) {
                char buf[4096], *end;
                struct group gr, *res = NULL;
                unsigned long gid = strtoul(d->socket_group, &end, 10);

                if (*end && (getgrnam_r(d->socket_group, &gr, buf, sizeof(buf), &res) != 0 || !res)) {
                        close(fd);
                        ft_diag_set(diag, "socket_group: no group named \"%s\" on this host", d->socket_group);
                        return -EINVAL;
                }
                if (*end)
                        gid = res->gr_gid;
                if (lchown(d->socket, (uid_t)-1, (gid_t)gid) < 0) {
                        r = -errno;
                        close(fd);
                        ft_diag_set(diag, "cannot give %s to group %s: %s (the daemon must be a member)", d->socket,
                                    d->socket_group, strerror(-r));
                        return r;
                }
        }
        if (chmod(d->socket, d->socket_mode) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int server_listen(struct server *s, int fd, struct ft_diag *diag)
{
        int r;

        if (fd < 0) {
                fd = bind_path(s, diag);
                if (fd < 0)
                        return fd;
        }
        r = uv_pipe_init(s->loop, &s->listener, 0);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->listener.data = s;
        s->listening = true;
        r = uv_pipe_open(&s->listener, fd);
        if (r >= 0)
                r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
        if (r < 0)
                ft_diag_set(diag, "cannot listen on %s: %s", s->cfg->daemon.socket, uv_strerror(r));
        return r;
}

static void on_listener_closed(uv_handle_t *h)
{
        struct server *s = h->data;

        free(s);
}

void server_free(struct server *s)
{
        if (!s)
                return;
        s->closing = true;
        while (s->conns)
                conn_close(s->conns);
        for (size_t i = 0; i < FT_ELEMENTSOF(s->entries); i++) {
                blob_unref(s->entries[i].json);
                blob_unref(s->entries[i].raw);
        }
        if (s->bound_path)
                (void)unlink(s->cfg->daemon.socket);
        if (s->listening)
                uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        else
                free(s);
}
