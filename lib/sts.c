/* SPDX-License-Identifier: MIT */
#include "sts.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "awscreds.h"
#include "text.h"
#include "timeutil.h"

#define STS_API_VERSION "2011-06-15"
#define STS_FORM_TYPE "application/x-www-form-urlencoded"

/* Region names are short ("us-gov-west-1"); anything longer is not one. */
#define STS_REGION_MAX 40

/* GetWebIdentityToken limits from the API reference (characters, not bytes). */
#define STS_AUDIENCE_MAX_CHARS 1000
#define STS_MAX_TAGS 50
#define STS_TAG_KEY_MAX_CHARS 128
#define STS_TAG_VALUE_MAX_CHARS 256

/* AssumeRoleWithWebIdentity limits from the API reference. */
#define ARWWI_SESSION_NAME_MIN 2
#define ARWWI_SESSION_NAME_MAX 64
#define ARWWI_ROLE_ARN_MAX 2048
#define ARWWI_TOKEN_MAX 20000
#define ARWWI_DURATION_MIN 900
#define ARWWI_DURATION_MAX 43200

/*
 * Response parsing limits. The answers we read are four levels deep; 16
 * leaves room for wrappers without letting a hostile body build a deep tree.
 * STS caps the JWT payload itself (JWTPayloadSizeExceededException) and
 * typical tokens are 1-4 KiB; 48 KiB for the token and the session token
 * leaves ample room inside the 64 KiB body cap. Every other value we read
 * (key ids, ARNs, timestamps, codes, messages) fits in 4 KiB.
 */
#define STS_XML_MAX_DEPTH 16
#define STS_XML_MAX_PATH 256
#define STS_XML_SECRET_MAX (48 * 1024)
#define STS_XML_TEXT_MAX 4096

/* How much of a value a diagnosis quotes. */
#define SHOW_VALUE_MAX 80
#define SHOW_MESSAGE_MAX 300

/* ------------------------------------------------------------------------ */
/* Text helpers                                                             */

static const char *show_str(char *buf, size_t size, const char *s)
{
        return ft_text_show(buf, size, s, strlen(s), SHOW_VALUE_MAX);
}

/* ------------------------------------------------------------------------ */
/* Endpoint                                                                 */

/*
 * "<letters>-<label>...-<digits>", lower case, at least three labels: the
 * shape of every AWS region name. It also keeps anything but a DNS label out
 * of the URL we build, and refuses "aws-global".
 */
static bool region_valid(const char *region)
{
        size_t len = strlen(region), labels = 1, label_len = 0;
        bool label_digits = true;

        if (len == 0 || len > STS_REGION_MAX || region[0] < 'a' || region[0] > 'z')
                return false;
        for (const char *p = region; *p; p++) {
                if (*p == '-') {
                        if (label_len == 0)
                                return false;
                        labels++;
                        label_len = 0;
                        label_digits = true;
                } else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
                        label_len++;
                        label_digits = label_digits && *p >= '0' && *p <= '9';
                } else {
                        return false;
                }
        }
        return labels >= 3 && label_len > 0 && label_digits;
}

/* The SDK's partitions (botocore partitions.json), first prefix match wins. */
struct sts_partition {
        const char *prefix;
        const char *dns_suffix;
        const char *dualstack_suffix;  /* NULL: the partition has no dual-stack endpoints */
        bool fips_is_regional;         /* GovCloud: sts.<region>.amazonaws.com is the FIPS endpoint */
};

static const struct sts_partition sts_partitions[] = {
        { "cn-", "amazonaws.com.cn", "api.amazonwebservices.com.cn", false },
        { "us-gov-", "amazonaws.com", "api.aws", true },
        { "us-iso-", "c2s.ic.gov", NULL, false },
        { "us-isob-", "sc2s.sgov.gov", NULL, false },
        { "us-isof-", "csp.hci.ic.gov", NULL, false },
        { "eu-isoe-", "cloud.adc-e.uk", NULL, false },
        { "", "amazonaws.com", "api.aws", false },
};

static const struct sts_partition *partition_of(const char *region)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(sts_partitions); i++)
                if (strncmp(region, sts_partitions[i].prefix, strlen(sts_partitions[i].prefix)) == 0)
                        return &sts_partitions[i];
        return &sts_partitions[FT_ELEMENTSOF(sts_partitions) - 1];
}

int ft_sts_endpoint(const char *region, bool fips, bool dualstack, char **ret_url)
{
        const struct sts_partition *part;
        struct ft_strbuf b = { 0 };
        const char *prefix, *suffix;
        char *url;

        if (!region || !ret_url || !region_valid(region))
                return -EINVAL;
        part = partition_of(region);
        if (dualstack && !part->dualstack_suffix)
                return -EOPNOTSUPP;
        suffix = dualstack ? part->dualstack_suffix : part->dns_suffix;
        prefix = fips && (dualstack || !part->fips_is_regional) ? "sts-fips" : "sts";
        ft_strbuf_printf(&b, "https://%s.%s.%s/", prefix, region, suffix);
        url = ft_strbuf_steal(&b);
        if (!url)
                return -ENOMEM;
        *ret_url = url;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

/*
 * STS is reached over https, or plain http for a local test endpoint (the
 * fetcher decides which hosts may use http). A query or fragment has no
 * place in an awsQuery endpoint: the parameters travel in the body.
 */
static bool endpoint_valid(const char *url)
{
        struct ft_url u;

        if (!url || ft_url_split(url, &u) < 0)
                return false;
        if (!((u.scheme_len == 5 && strncasecmp(u.scheme, "https", 5) == 0) ||
              (u.scheme_len == 4 && strncasecmp(u.scheme, "http", 4) == 0)))
                return false;
        return !strpbrk(url, "?#");
}

static bool tag_char_ok(unsigned char c)
{
        /* STS's tag pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]; non-ASCII letters are left to STS. */
        return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr(" _.:/=+-@", c) != NULL;
}

/* The first character of `s` outside the tag pattern, or 0. */
static char tag_bad_char(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (!tag_char_ok(*p))
                        return (char)*p;
        return 0;
}

static int check_audiences(const struct ft_gwit_params *p, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];

        if (p->n_audiences < 1 || p->n_audiences > FT_STS_MAX_AUDIENCES || !p->audiences)
                return ft_diag_set(diag, "GetWebIdentityToken needs 1 to %d audiences, %zu given",
                                   FT_STS_MAX_AUDIENCES, p->audiences ? p->n_audiences : 0);
        for (size_t i = 0; i < p->n_audiences; i++) {
                const char *a = p->audiences[i];
                size_t chars;

                if (!a || !*a)
                        return ft_diag_set(diag, "audience %zu is empty: STS needs 1 to %d characters",
                                           i + 1, STS_AUDIENCE_MAX_CHARS);
                if (ft_text_chars(a, &chars) < 0)
                        return ft_diag_set(diag, "audience '%s' is not UTF-8 text or contains a control "
                                           "character", show_str(shown, sizeof(shown), a));
                if (chars > STS_AUDIENCE_MAX_CHARS)
                        return ft_diag_set(diag, "audience '%s' is %zu characters long: STS accepts at most %d",
                                           show_str(shown, sizeof(shown), a), chars, STS_AUDIENCE_MAX_CHARS);
        }
        return 0;
}

static int check_tag(const struct ft_sts_tag *t, size_t i, struct ft_diag *diag)
{
        char shown_key[SHOW_VALUE_MAX + 4], shown_value[SHOW_VALUE_MAX + 4];
        size_t chars;
        char bad;

        if (!t->key || !*t->key)
                return ft_diag_set(diag, "request tag %zu has an empty key: STS needs 1 to %d characters",
                                   i + 1, STS_TAG_KEY_MAX_CHARS);
        show_str(shown_key, sizeof(shown_key), t->key);
        if (ft_text_chars(t->key, &chars) < 0)
                return ft_diag_set(diag, "request tag key '%s' is not UTF-8 text or contains a control character",
                                   shown_key);
        if (chars > STS_TAG_KEY_MAX_CHARS)
                return ft_diag_set(diag, "request tag key '%s' is %zu characters long: STS accepts at most %d",
                                   shown_key, chars, STS_TAG_KEY_MAX_CHARS);
        bad = tag_bad_char(t->key);
        if (bad)
                return ft_diag_set(diag, "request tag key '%s' contains '%c': STS accepts only letters, digits, "
                                   "spaces and _ . : / = + - @ in tags", shown_key, bad);
        if (!t->value)
                return ft_diag_set(diag, "request tag '%s' has no value (an empty value is allowed)", shown_key);
        show_str(shown_value, sizeof(shown_value), t->value);
        if (ft_text_chars(t->value, &chars) < 0)
                return ft_diag_set(diag, "value '%s' of request tag '%s' is not UTF-8 text or contains a control "
                                   "character", shown_value, shown_key);
        if (chars > STS_TAG_VALUE_MAX_CHARS)
                return ft_diag_set(diag, "value '%s' of request tag '%s' is %zu characters long: STS accepts at "
                                   "most %d", shown_value, shown_key, chars, STS_TAG_VALUE_MAX_CHARS);
        bad = tag_bad_char(t->value);
        if (bad)
                return ft_diag_set(diag, "value '%s' of request tag '%s' contains '%c': STS accepts only letters, "
                                   "digits, spaces and _ . : / = + - @ in tags", shown_value, shown_key, bad);
        return 0;
}

static int check_tags(const struct ft_gwit_params *p, struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];
        int r;

        if (p->n_tags == 0)
                return 0;
        if (p->n_tags > STS_MAX_TAGS || !p->tags)
                return ft_diag_set(diag, "%zu request tags given: STS accepts at most %d",
                                   p->tags ? p->n_tags : 0, STS_MAX_TAGS);
        for (size_t i = 0; i < p->n_tags; i++) {
                r = check_tag(&p->tags[i], i, diag);
                if (r < 0)
                        return r;
                /* Session tag keys are case-insensitive at AWS: two that differ only in case collide. */
                for (size_t j = 0; j < i; j++)
                        if (strcasecmp(p->tags[i].key, p->tags[j].key) == 0)
                                return ft_diag_set(diag, "request tag key '%s' is given twice (tag keys are "
                                                   "case-insensitive)",
                                                   show_str(shown, sizeof(shown), p->tags[i].key));
        }
        return 0;
}

static int check_gwit_params(const char *endpoint_url, const struct ft_gwit_params *p, const char **ret_alg,
                             struct ft_diag *diag)
{
        char shown[SHOW_VALUE_MAX + 4];
        const char *alg;
        int r;

        if (!endpoint_valid(endpoint_url))
                return ft_diag_set(diag, "STS endpoint '%s' is not an http(s) URL without query",
                                   endpoint_url ? show_str(shown, sizeof(shown), endpoint_url) : "");
        r = check_audiences(p, diag);
        if (r < 0)
                return r;
        alg = p->signing_algorithm ? p->signing_algorithm : "RS256";
        if (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES384") != 0)
                return ft_diag_set(diag, "signing algorithm '%s' is not offered by STS: use RS256 (the one "
                                   "Entra ID and Google accept) or ES384", show_str(shown, sizeof(shown), alg));
        if (p->duration != 0 && (p->duration < FT_STS_MIN_DURATION || p->duration > FT_STS_MAX_DURATION))
                return ft_diag_set(diag, "token lifetime %d s is out of range: STS accepts %d to %d s "
                                   "(0 leaves STS's default of %d s)", p->duration, FT_STS_MIN_DURATION,
                                   FT_STS_MAX_DURATION, FT_STS_DEFAULT_DURATION);
        r = check_tags(p, diag);
        if (r < 0)
                return r;
        *ret_alg = alg;
        return 0;
}

static void form_param(struct ft_strbuf *b, const char *name, const char *value)
{
        ft_strbuf_puts(b, "&");
        ft_strbuf_puts(b, name);
        ft_strbuf_puts(b, "=");
        ft_strbuf_urlencode(b, value, strlen(value));
}

int ft_sts_build_gwit(const char *endpoint_url, const struct ft_gwit_params *p,
                      struct ft_request **ret, struct ft_diag *diag)
{
        struct ft_strbuf body = { 0 };
        const char *alg = NULL;
        char name[48];
        int r;

        if (!p || !ret)
                return -EINVAL;
        r = check_gwit_params(endpoint_url, p, &alg, diag);
        if (r < 0)
                return r;
        /* The SDK's parameter order: Audience, SigningAlgorithm, DurationSeconds, Tags. */
        ft_strbuf_puts(&body, "Action=GetWebIdentityToken&Version=" STS_API_VERSION);
        for (size_t i = 0; i < p->n_audiences; i++) {
                snprintf(name, sizeof(name), "Audience.member.%zu", i + 1);
                form_param(&body, name, p->audiences[i]);
        }
        form_param(&body, "SigningAlgorithm", alg);
        if (p->duration > 0)
                ft_strbuf_printf(&body, "&DurationSeconds=%d", p->duration);
        for (size_t i = 0; i < p->n_tags; i++) {
                snprintf(name, sizeof(name), "Tags.member.%zu.Key", i + 1);
                form_param(&body, name, p->tags[i].key);
                snprintf(name, sizeof(name), "Tags.member.%zu.Value", i + 1);
                form_param(&body, name, p->tags[i].value);
        }
        if (body.oom)
                r = -ENOMEM;
        else
                r = ft_request_new_post(ret, endpoint_url, STS_FORM_TYPE "; charset=utf-8", body.p, body.len);
        ft_strbuf_done(&body);
        if (r < 0) {
                ft_diag_set(diag, "cannot build the GetWebIdentityToken request: %s", strerror(-r));
                return r;
        }
        return 0;
}

static bool session_name_valid(const char *s)
{
        size_t len = strlen(s);

        if (len < ARWWI_SESSION_NAME_MIN || len > ARWWI_SESSION_NAME_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_+=,.@-", *p)))
                        return false;
        return true;
}

int ft_sts_build_arwwi(const char *endpoint_url, const char *role_arn, const char *session_name,
                       const char *web_identity_token, int duration, struct ft_request **ret)
{
        struct ft_strbuf body = { 0 };
        size_t token_len;
        int r;

        if (!endpoint_valid(endpoint_url) || !role_arn || !session_name || !web_identity_token || !ret)
                return -EINVAL;
        if (strncmp(role_arn, "arn:", 4) != 0 || strlen(role_arn) > ARWWI_ROLE_ARN_MAX ||
            strpbrk(role_arn, " \t\r\n"))
                return -EINVAL;
        if (!session_name_valid(session_name))
                return -EINVAL;
        token_len = strlen(web_identity_token);
        if (token_len == 0 || token_len > ARWWI_TOKEN_MAX)
                return -EINVAL;
        if (duration != 0 && (duration < ARWWI_DURATION_MIN || duration > ARWWI_DURATION_MAX))
                return -EINVAL;
        /*
         * The token goes out exactly as read from the file, untrimmed, as the
         * SDKs send it. The body holds it, so the buffer is wiped (strbuf
         * growth and ft_strbuf_done wipe; the request wipes its copy).
         */
        ft_strbuf_puts(&body, "Action=AssumeRoleWithWebIdentity&Version=" STS_API_VERSION);
        form_param(&body, "RoleArn", role_arn);
        form_param(&body, "RoleSessionName", session_name);
        form_param(&body, "WebIdentityToken", web_identity_token);
        if (duration > 0)
                ft_strbuf_printf(&body, "&DurationSeconds=%d", duration);
        if (body.oom)
                r = -ENOMEM;
        else
                r = ft_request_new_post(ret, endpoint_url, STS_FORM_TYPE, body.p, body.len);
        ft_strbuf_done(&body);
        return r;
}

/* ------------------------------------------------------------------------ */
/* Response XML                                                             */

/*
 * Expat's own buffers hold the body we feed it, token included, and it
 * frees them without clearing. This allocator keeps each block's size in a
 * header so it can wipe every block before freeing it.
 */
union wipe_header {
        size_t size;
        max_align_t align;
};

static void *wipe_malloc(size_t n)
{
        union wipe_header *h;

        if (n > SIZE_MAX - sizeof(*h))
                return NULL;
        h = malloc(sizeof(*h) + n);
        if (!h)
                return NULL;
        h->size = n;
        return h + 1;
}

static void wipe_free(void *p)
{
        union wipe_header *h;

        if (!p)
                return;
        h = (union wipe_header *)p - 1;
        ft_wipe(p, h->size);
        free(h);
}

static void *wipe_realloc(void *p, size_t n)
{
        union wipe_header *h;
        void *q;

        if (!p)
                return wipe_malloc(n);
        h = (union wipe_header *)p - 1;
        q = wipe_malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, h->size < n ? h->size : n);
        wipe_free(p);
        return q;
}

static const XML_Memory_Handling_Suite wipe_memsuite = {
        .malloc_fcn = wipe_malloc,
        .realloc_fcn = wipe_realloc,
        .free_fcn = wipe_free,
};

enum {
        XF_FIRST = 1 << 0,     /* keep the first occurrence, ignore repeats (else a repeat is an error) */
        XF_TRUNCATE = 1 << 1,  /* cut an overlong text at max (else it is an error) */
};

/* One leaf element to extract, addressed by local names from the root. */
struct xml_field {
        const char *path;      /* "Root/Child/Leaf" */
        size_t max;            /* longest text accepted, bytes */
        unsigned flags;
        char *text;            /* trimmed text, NUL-terminated; wiped on free */
        size_t len;
        unsigned seen;
};

struct xml_doc {
        XML_Parser parser;
        struct xml_field *fields;
        size_t n_fields;
        /* The element path as "A/B/C"; path_at[d] is its length above depth d. */
        char path[STS_XML_MAX_PATH];
        size_t path_len;
        size_t path_at[STS_XML_MAX_DEPTH];
        unsigned depth;
        unsigned overflow_depth;       /* non-zero: the path got too long at this depth */
        struct xml_field *cur;         /* field whose text is being collected */
        struct ft_strbuf text;
        char root[64];
        int error;
        char why[256];
};

static void xml_fail(struct xml_doc *d, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void xml_fail(struct xml_doc *d, int error, const char *fmt, ...)
{
        va_list ap;

        if (d->error)
                return;
        d->error = error;
        va_start(ap, fmt);
        vsnprintf(d->why, sizeof(d->why), fmt, ap);
        va_end(ap);
        XML_StopParser(d->parser, XML_FALSE);
}

static const char *leaf_name(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

static void xml_begin_field(struct xml_doc *d)
{
        for (size_t i = 0; i < d->n_fields; i++) {
                struct xml_field *f = &d->fields[i];

                if (strcmp(f->path, d->path) != 0)
                        continue;
                if (f->seen++ > 0) {
                        if (!(f->flags & XF_FIRST))
                                xml_fail(d, -EBADMSG, "<%s> appears more than once", leaf_name(f->path));
                        return;
                }
                d->cur = f;
                return;
        }
}

static void XMLCALL xml_on_start(void *userdata, const XML_Char *name, const XML_Char **attrs)
{
        struct xml_doc *d = userdata;
        const char *colon = strrchr(name, ':');
        const char *local = colon ? colon + 1 : name;
        size_t n = strlen(local);

        if (d->error)
                return;
        if (d->cur) {
                xml_fail(d, -EBADMSG, "<%s> holds an element where text was expected", leaf_name(d->cur->path));
                return;
        }
        if (d->depth >= STS_XML_MAX_DEPTH) {
                xml_fail(d, -EBADMSG, "elements are nested deeper than %d levels", STS_XML_MAX_DEPTH);
                return;
        }
        d->path_at[d->depth++] = d->path_len;
        if (d->depth == 1)
                ft_text_show(d->root, sizeof(d->root), local, n, sizeof(d->root) - 4);
        /* Namespaces are ignored: matching is on local names, whatever the prefix. */
        if (d->overflow_depth)
                return;
        if (d->path_len + 1 + n + 1 > sizeof(d->path)) {
                d->overflow_depth = d->depth;
                return;
        }
        if (d->depth > 1)
                d->path[d->path_len++] = '/';
        memcpy(d->path + d->path_len, local, n + 1);
        d->path_len += n;
        xml_begin_field(d);
}

static bool xml_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void xml_end_field(struct xml_doc *d)
{
        struct xml_field *f = d->cur;
        const char *s = d->text.p ? d->text.p : "";
        size_t len = d->text.len;

        d->cur = NULL;
        if (d->text.oom) {
                xml_fail(d, -ENOMEM, "out of memory");
                return;
        }
        while (len > 0 && xml_space(*s)) {
                s++;
                len--;
        }
        while (len > 0 && xml_space(s[len - 1]))
                len--;
        f->text = ft_strndup(s, len);
        f->len = len;
        ft_strbuf_done(&d->text);
        if (!f->text)
                xml_fail(d, -ENOMEM, "out of memory");
}

static void XMLCALL xml_on_end(void *userdata, const XML_Char *name)
{
        struct xml_doc *d = userdata;

        if (d->error || d->depth == 0)
                return;
        if (d->cur)
                xml_end_field(d);
        if (d->overflow_depth == d->depth)
                d->overflow_depth = 0;
        d->path_len = d->path_at[--d->depth];
        d->path[d->path_len] = '\0';
}

static void XMLCALL xml_on_text(void *userdata, const XML_Char *s, int len)
{
        struct xml_doc *d = userdata;
        struct xml_field *f = d->cur;
        size_t n = (size_t)len;

        if (d->error || !f || len <= 0)
                return;
        if (d->text.len + n > f->max) {
                if (!(f->flags & XF_TRUNCATE)) {
                        xml_fail(d, -EMSGSIZE, "<%s> is longer than %zu bytes", leaf_name(f->path), f->max);
                        return;
                }
                n = f->max - d->text.len;
        }
        ft_strbuf_append(&d->text, s, n);
}

/*
 * STS never sends a DTD. Refusing the DOCTYPE as soon as it starts keeps
 * entity declarations (billion laughs, external entities) from ever being
 * read, whatever expat's own limits are.
 */
static void XMLCALL xml_on_doctype(void *userdata, const XML_Char *name, const XML_Char *sysid,
                                   const XML_Char *pubid, int has_internal_subset)
{
        xml_fail(userdata, -EBADMSG, "it carries a DOCTYPE, which STS never sends");
}

static void XMLCALL xml_on_entity(void *userdata, const XML_Char *name, int is_parameter_entity,
                                  const XML_Char *value, int value_length, const XML_Char *base,
                                  const XML_Char *system_id, const XML_Char *public_id,
                                  const XML_Char *notation_name)
{
        xml_fail(userdata, -EBADMSG, "it declares an entity, which STS never does");
}

static void xml_fields_free(struct xml_field *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                ft_free_secret(fields[i].text);
                fields[i].text = NULL;
        }
}

/*
 * Run expat over `body` and fill `fields`. On failure returns a negative
 * errno with `d->why` saying what is wrong with the document; the caller
 * frees the fields in every case.
 */
static int xml_extract(struct xml_doc *d, const char *body, size_t len, struct xml_field *fields, size_t n)
{
        XML_Parser p;
        enum XML_Status st;

        d->fields = fields;
        d->n_fields = n;
        if (!body || len == 0) {
                snprintf(d->why, sizeof(d->why), "the body is empty");
                return -EBADMSG;
        }
        if (len > FT_STS_MAX_BODY) {
                snprintf(d->why, sizeof(d->why), "the body is %zu bytes, more than the %d accepted",
                         len, FT_STS_MAX_BODY);
                return -EMSGSIZE;
        }
        p = XML_ParserCreate_MM(NULL, &wipe_memsuite, NULL);
        if (!p) {
                snprintf(d->why, sizeof(d->why), "out of memory");
                return -ENOMEM;
        }
        d->parser = p;
        XML_SetUserData(p, d);
        XML_SetElementHandler(p, xml_on_start, xml_on_end);
        XML_SetCharacterDataHandler(p, xml_on_text);
        XML_SetStartDoctypeDeclHandler(p, xml_on_doctype);
        XML_SetEntityDeclHandler(p, xml_on_entity);
        XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
        st = XML_Parse(p, body, (int)len, XML_TRUE);
        if (st != XML_STATUS_OK && !d->error) {
                d->error = -EBADMSG;
                snprintf(d->why, sizeof(d->why), "it is not well-formed XML (%s at line %lu)",
                         XML_ErrorString(XML_GetErrorCode(p)), (unsigned long)XML_GetCurrentLineNumber(p));
        }
        XML_ParserFree(p);
        d->parser = NULL;
        ft_strbuf_done(&d->text);
        return d->error;
}

/* Printable ASCII without spaces: the alphabet of JWTs, AWS key ids, secrets and session tokens. */
static bool credential_text_ok(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return false;
        return len > 0;
}

/* Every field flagged required must be present. */
static int xml_require(const struct xml_field *fields, size_t n, const char *what, struct ft_diag *diag)
{
        for (size_t i = 0; i < n; i++)
                if (!fields[i].text)
                        return ft_diag_set(diag, "%s answer from STS is unusable: it has no <%s> element "
                                           "(expected at %s)", what, leaf_name(fields[i].path), fields[i].path);
        return 0;
}

static int xml_parse_response(struct xml_doc *d, const char *body, size_t len, const char *what,
                              const char *root, struct xml_field *fields, size_t n, struct ft_diag *diag)
{
        int r = xml_extract(d, body, len, fields, n);

        if (r < 0) {
                ft_diag_set(diag, "%s answer from STS is unusable: %s", what, d->why);
                return r;
        }
        if (strcmp(d->root, root) != 0) {
                ft_diag_set(diag, "%s answer from STS is unusable: its root element is <%s>, not <%s>",
                            what, d->root, root);
                return -EBADMSG;
        }
        return 0;
}

int ft_sts_parse_gwit(const char *body, size_t len, char **ret_token, int64_t *ret_expiration,
                      struct ft_diag *diag)
{
        struct xml_field fields[] = {
                { .path = "GetWebIdentityTokenResponse/GetWebIdentityTokenResult/WebIdentityToken",
                  .max = STS_XML_SECRET_MAX },
                { .path = "GetWebIdentityTokenResponse/GetWebIdentityTokenResult/Expiration",
                  .max = STS_XML_TEXT_MAX },
        };
        struct xml_doc doc = { 0 };
        int64_t expiration;
        int r;

        if (!ret_token || !ret_expiration)
                return -EINVAL;
        r = xml_parse_response(&doc, body, len, "GetWebIdentityToken", "GetWebIdentityTokenResponse",
                               fields, FT_ELEMENTSOF(fields), diag);
        if (r < 0)
                goto out;
        r = xml_require(fields, FT_ELEMENTSOF(fields), "GetWebIdentityToken", diag);
        if (r < 0)
                goto out;
        if (!credential_text_ok(fields[0].text, fields[0].len)) {
                r = ft_diag_set(diag, "GetWebIdentityToken answer from STS is unusable: <WebIdentityToken> is "
                                "empty or holds characters a JWT cannot contain");
                goto out;
        }
        if (ft_time_parse_iso8601(fields[1].text, fields[1].len, &expiration) < 0) {
                char shown[SHOW_VALUE_MAX + 4];
                r = ft_diag_set(diag, "GetWebIdentityToken answer from STS is unusable: <Expiration> '%s' is "
                                "not an ISO 8601 time", ft_text_show(shown, sizeof(shown), fields[1].text,
                                                                     fields[1].len, SHOW_VALUE_MAX));
                goto out;
        }
        *ret_token = FT_TAKE_PTR(fields[0].text);
        *ret_expiration = expiration;
out:
        xml_fields_free(fields, FT_ELEMENTSOF(fields));
        return r;
}

/* The 12-digit account of "arn:<partition>:<service>::<account>:...", or NULL. */
static char *arn_account(const char *arn)
{
        const char *p = arn;

        for (int colons = 0; colons < 4; colons++) {
                p = strchr(p, ':');
                if (!p)
                        return NULL;
                p++;
        }
        if (strncmp(arn, "arn:", 4) != 0 || strspn(p, "0123456789") != 12 || p[12] != ':')
                return NULL;
        return ft_strndup(p, 12);
}

enum {
        ARWWI_KEY_ID,
        ARWWI_SECRET,
        ARWWI_SESSION_TOKEN,
        ARWWI_EXPIRATION,
        ARWWI_ARN,
};

int ft_sts_parse_arwwi(const char *body, size_t len, struct ft_aws_creds **ret, struct ft_diag *diag)
{
#define ARWWI_RESULT "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/"
        struct xml_field fields[] = {
                [ARWWI_KEY_ID] = { .path = ARWWI_RESULT "Credentials/AccessKeyId", .max = STS_XML_TEXT_MAX },
                [ARWWI_SECRET] = { .path = ARWWI_RESULT "Credentials/SecretAccessKey", .max = STS_XML_TEXT_MAX },
                [ARWWI_SESSION_TOKEN] = { .path = ARWWI_RESULT "Credentials/SessionToken",
                                          .max = STS_XML_SECRET_MAX },
                [ARWWI_EXPIRATION] = { .path = ARWWI_RESULT "Credentials/Expiration", .max = STS_XML_TEXT_MAX },
                [ARWWI_ARN] = { .path = ARWWI_RESULT "AssumedRoleUser/Arn", .max = STS_XML_TEXT_MAX },
        };
#undef ARWWI_RESULT
        static const char *const what = "AssumeRoleWithWebIdentity";
        struct xml_doc doc = { 0 };
        struct ft_aws_creds *c = NULL;
        int64_t expiration;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_response(&doc, body, len, what, "AssumeRoleWithWebIdentityResponse",
                               fields, FT_ELEMENTSOF(fields), diag);
        if (r < 0)
                goto out;
        /* The assumed-role ARN is informational: required are the four credential fields. */
        r = xml_require(fields, ARWWI_ARN, what, diag);
        if (r < 0)
                goto out;
        for (int i = ARWWI_KEY_ID; i <= ARWWI_SESSION_TOKEN; i++) {
                if (!credential_text_ok(fields[i].text, fields[i].len)) {
                        r = ft_diag_set(diag, "%s answer from STS is unusable: <%s> is empty or holds spaces or "
                                        "control characters", what, leaf_name(fields[i].path));
                        goto out;
                }
        }
        if (ft_time_parse_iso8601(fields[ARWWI_EXPIRATION].text, fields[ARWWI_EXPIRATION].len,
                                  &expiration) < 0) {
                char shown[SHOW_VALUE_MAX + 4];
                r = ft_diag_set(diag, "%s answer from STS is unusable: <Expiration> '%s' is not an ISO 8601 "
                                "time", what, ft_text_show(shown, sizeof(shown), fields[ARWWI_EXPIRATION].text,
                                                           fields[ARWWI_EXPIRATION].len, SHOW_VALUE_MAX));
                goto out;
        }
        c = ft_aws_creds_new();
        if (!c) {
                r = -ENOMEM;
                goto out;
        }
        c->access_key_id = FT_TAKE_PTR(fields[ARWWI_KEY_ID].text);
        c->secret_access_key = FT_TAKE_PTR(fields[ARWWI_SECRET].text);
        c->session_token = FT_TAKE_PTR(fields[ARWWI_SESSION_TOKEN].text);
        c->expiration = expiration;
        if (fields[ARWWI_ARN].text && fields[ARWWI_ARN].len > 0) {
                /* The SDK derives the account from the assumed-role ARN the same way. */
                c->account_id = arn_account(fields[ARWWI_ARN].text);
                c->role_arn = FT_TAKE_PTR(fields[ARWWI_ARN].text);
        }
        *ret = c;
out:
        xml_fields_free(fields, FT_ELEMENTSOF(fields));
        return r;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

enum {
        ERR_TYPE,
        ERR_CODE,
        ERR_MESSAGE,
        ERR_REQUEST_ID,
        /* The older <Response><Errors><Error> shape. */
        ERR2_TYPE,
        ERR2_CODE,
        ERR2_MESSAGE,
        ERR2_REQUEST_ID,
        ERR2_REQUEST_ID_CAPS,
        ERR_N_FIELDS,
};

struct sts_error {
        const char *type, *code, *message, *request_id;
};

/*
 * Code, Message, Type and RequestId from either error shape, each NULL when
 * absent or when the body is not XML. Tolerant: repeats keep the first, long
 * texts are cut. The strings point into `fields`, which the caller frees.
 */
static void parse_error_doc(const char *body, size_t len, struct xml_field *fields, struct sts_error *ret)
{
        static const struct { const char *path; size_t max; } spec[ERR_N_FIELDS] = {
                [ERR_TYPE] = { "ErrorResponse/Error/Type", 64 },
                [ERR_CODE] = { "ErrorResponse/Error/Code", 128 },
                [ERR_MESSAGE] = { "ErrorResponse/Error/Message", STS_XML_TEXT_MAX },
                [ERR_REQUEST_ID] = { "ErrorResponse/RequestId", 128 },
                [ERR2_TYPE] = { "Response/Errors/Error/Type", 64 },
                [ERR2_CODE] = { "Response/Errors/Error/Code", 128 },
                [ERR2_MESSAGE] = { "Response/Errors/Error/Message", STS_XML_TEXT_MAX },
                [ERR2_REQUEST_ID] = { "Response/RequestId", 128 },
                [ERR2_REQUEST_ID_CAPS] = { "Response/RequestID", 128 },
        };
        struct xml_doc doc = { 0 };

        for (size_t i = 0; i < ERR_N_FIELDS; i++)
                fields[i] = (struct xml_field){ .path = spec[i].path, .max = spec[i].max,
                                                .flags = XF_FIRST | XF_TRUNCATE };
        if (xml_extract(&doc, body, len, fields, ERR_N_FIELDS) < 0)
                return;
#define PICK(a, b) (fields[a].text ? fields[a].text : fields[b].text)
        ret->type = PICK(ERR_TYPE, ERR2_TYPE);
        ret->code = PICK(ERR_CODE, ERR2_CODE);
        ret->message = PICK(ERR_MESSAGE, ERR2_MESSAGE);
        ret->request_id = fields[ERR_REQUEST_ID].text ? fields[ERR_REQUEST_ID].text
                                                       : PICK(ERR2_REQUEST_ID, ERR2_REQUEST_ID_CAPS);
#undef PICK
}

enum retry_rule {
        RETRY_BACKOFF = FT_RETRY_BACKOFF,
        RETRY_SLOW = FT_RETRY_SLOW,
        RETRY_NOW = FT_RETRY_NOW,
        RETRY_NOW_IF_TEMPORARY,        /* NOW with expiring credentials (fetch fresh ones), else SLOW */
};

/*
 * Each known Code with what it means and what to do. Placeholders are
 * replaced by what the caller knows: {account} {principal} {region}
 * {endpoint} {duration} {source} {expiry} {operation}. Entries bound to an
 * operation come first and win over the generic entry with the same code.
 */
struct sts_explanation {
        const char *operation;         /* NULL: any operation */
        const char *codes;             /* space-separated aliases */
        enum retry_rule retry;
        const char *text;
};

static const struct sts_explanation sts_explanations[] = {
        { "GetWebIdentityToken", "OutboundWebIdentityFederationDisabledException", RETRY_SLOW,
          "outbound identity federation is not enabled on {account}: an administrator must enable it once "
          "in IAM (EnableOutboundWebIdentityFederation, or aws_iam_outbound_web_identity_federation in "
          "Terraform); until then every GetWebIdentityToken call fails" },
        { "GetWebIdentityToken", "JWTPayloadSizeExceededException", RETRY_SLOW,
          "the token STS would issue for {principal} is larger than AWS allows: configure fewer or shorter "
          "request tags (the principal's own tags count too)" },
        { "GetWebIdentityToken", "SessionDurationEscalationException", RETRY_NOW,
          "the requested token lifetime of {duration} would outlive {source}{expiry}: retry with a shorter "
          "duration, or refresh the credentials first" },
        { "GetWebIdentityToken", "AccessDenied AccessDeniedException", RETRY_SLOW,
          "{principal} may not call sts:GetWebIdentityToken in {region}, or a policy condition failed "
          "(sts:IdentityTokenAudience for the audience, sts:DurationSeconds for the lifetime of {duration}): "
          "allow sts:GetWebIdentityToken in the principal's IAM policy and check service control policies "
          "and permission boundaries" },
        { "GetWebIdentityToken", "InvalidAction UnknownOperation UnknownOperationException", RETRY_SLOW,
          "{endpoint} does not serve GetWebIdentityToken: use the regional STS endpoint of {region}; the "
          "global endpoint sts.amazonaws.com and older STS deployments do not offer it" },
        { "AssumeRoleWithWebIdentity", "InvalidIdentityToken", RETRY_SLOW,
          "STS rejected the web identity token from the token file for role {principal}: the OIDC provider "
          "that issued it must be registered in IAM of {account} with a matching issuer URL and audience, "
          "and the file must hold the projected service account token" },
        { "AssumeRoleWithWebIdentity", "IDPRejectedClaim", RETRY_SLOW,
          "the trust policy of role {principal} does not accept the claims of the web identity token "
          "(for example its sub or aud): allow this identity in the role's trust policy" },
        { "AssumeRoleWithWebIdentity", "IDPCommunicationError", RETRY_BACKOFF,
          "STS could not reach the identity provider that issued the web identity token to check it: "
          "retrying with backoff" },
        { "AssumeRoleWithWebIdentity", "ExpiredTokenException ExpiredToken", RETRY_SLOW,
          "the web identity token in the token file has expired: whatever writes the file (the kubelet for "
          "a projected service account token) is not rotating it; the file is read again on the next attempt" },
        { "AssumeRoleWithWebIdentity", "AccessDenied AccessDeniedException", RETRY_SLOW,
          "role {principal} may not be assumed with this web identity: its trust policy must allow "
          "sts:AssumeRoleWithWebIdentity for the token's identity provider and subject" },
        { NULL, "AccessDenied AccessDeniedException", RETRY_SLOW,
          "{principal} may not call {operation} in {region}: allow it in the principal's IAM policy and check "
          "service control policies and permission boundaries" },
        { NULL, "MalformedPolicyDocument", RETRY_SLOW,
          "the session policy sent with {operation} is not a valid policy document: fix or remove it" },
        { NULL, "PackedPolicyTooLarge", RETRY_SLOW,
          "the session policies and tags sent with {operation} for {principal} are too large once packed: "
          "send fewer or smaller ones" },
        { NULL, "ExpiredToken ExpiredTokenException", RETRY_NOW,
          "the session token of {source} has expired{expiry}: fetch fresh credentials and sign again" },
        { NULL, "InvalidClientTokenId", RETRY_NOW_IF_TEMPORARY,
          "AWS does not know the access key of {source}: temporary keys may have been rotated or revoked "
          "(fetch fresh ones), long-term keys may have been deleted or deactivated in IAM, or the keys "
          "belong to another partition than {region}" },
        { NULL, "SignatureDoesNotMatch InvalidSignatureException", RETRY_SLOW,
          "AWS computed a different signature for the request signed for region {region} at {endpoint}: the "
          "secret key of {source} does not belong to its access key, the region does not match the "
          "endpoint, or the local clock is far off" },
        { NULL, "IncompleteSignature", RETRY_SLOW,
          "AWS found the request's signature incomplete (Authorization or X-Amz-Date missing or malformed): "
          "a proxy may have rewritten the request to {endpoint}, or the signer has a bug" },
        { NULL, "MissingAuthenticationToken", RETRY_SLOW,
          "the request reached {endpoint} without a signature: a proxy may have stripped the Authorization "
          "header, or the URL does not point at STS" },
        { NULL, "RequestExpired RequestTimeTooSkewed", RETRY_SLOW,
          "AWS refused the request's timestamp: the local clock differs from AWS's by more than 5 minutes; "
          "fix time synchronisation on this host (chrony, systemd-timesyncd)" },
        { NULL, "ValidationError InvalidParameterValue InvalidParameterCombination MissingParameter "
                "MalformedQueryString InvalidQueryParameter", RETRY_SLOW,
          "STS rejected a parameter of {operation} (requested lifetime {duration}): fix the configured "
          "audiences, tags or duration as AWS's message says" },
        { NULL, "Throttling ThrottlingException RequestLimitExceeded TooManyRequestsException "
                "PriorRequestNotComplete", RETRY_BACKOFF,
          "STS is throttling {operation} calls of {account} in {region}: retrying with backoff; if this "
          "persists, request tokens less often" },
        { NULL, "ServiceUnavailable ServiceUnavailableException InternalFailure InternalError "
                "InternalServerError", RETRY_BACKOFF,
          "STS in {region} failed internally or is unavailable: retrying with backoff" },
        { NULL, "RegionDisabledException", RETRY_SLOW,
          "STS is not activated in {region} for {account}: an administrator can activate the region in IAM "
          "(Account settings, Security Token Service endpoints), or configure an active region" },
        { NULL, "OptInRequired", RETRY_SLOW,
          "{account} has not opted in to {region}: enable the region for the account or use another one" },
};

static bool code_in_list(const char *list, const char *code)
{
        size_t n = strlen(code);

        for (const char *p = list; *p;) {
                size_t len = strcspn(p, " ");
                if (len == n && strncmp(p, code, n) == 0)
                        return true;
                p += len;
                p += strspn(p, " ");
        }
        return false;
}

static const struct sts_explanation *explanation_of(const char *operation, const char *code)
{
        for (size_t i = 0; i < FT_ELEMENTSOF(sts_explanations); i++) {
                const struct sts_explanation *e = &sts_explanations[i];
                if (e->operation && strcmp(e->operation, operation) != 0)
                        continue;
                if (code_in_list(e->codes, code))
                        return e;
        }
        return NULL;
}

struct explain_args {
        const struct ft_sts_context *ctx;
        const char *operation;
        const char *account;           /* from the context, or derived from the principal ARN */
};

static void put_value(struct ft_strbuf *b, const char *s)
{
        char shown[256 + 4];

        ft_strbuf_puts(b, ft_text_show(shown, sizeof(shown), s, strlen(s), 256));
}

static void put_placeholder(struct ft_strbuf *b, const char *name, size_t len, const void *arg)
{
        const struct explain_args *a = arg;
        const struct ft_sts_context *c = a->ctx;

#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
        if (IS("account")) {
                if (a->account) {
                        ft_strbuf_puts(b, "account ");
                        put_value(b, a->account);
                } else {
                        ft_strbuf_puts(b, "this AWS account");
                }
        } else if (IS("principal")) {
                put_value(b, c->principal_arn ? c->principal_arn : "the calling principal");
        } else if (IS("region")) {
                put_value(b, c->region ? c->region : "the configured region");
        } else if (IS("endpoint")) {
                put_value(b, c->endpoint ? c->endpoint : "the STS endpoint");
        } else if (IS("operation")) {
                put_value(b, a->operation);
        } else if (IS("duration")) {
                if (c->duration > 0)
                        ft_strbuf_printf(b, "%d s", c->duration);
                else
                        ft_strbuf_printf(b, "%d s (STS's default)", FT_STS_DEFAULT_DURATION);
        } else if (IS("source")) {
                ft_strbuf_puts(b, "the AWS credentials");
                if (c->credential_source) {
                        ft_strbuf_puts(b, " from ");
                        put_value(b, c->credential_source);
                }
        } else if (IS("expiry")) {
                if (c->creds_expiration > 0) {
                        char when[21];
                        ft_time_format_rfc3339(c->creds_expiration, when);
                        ft_strbuf_printf(b, " (they expire%s at %s)",
                                         c->now > 0 && c->creds_expiration <= c->now ? "d" : "", when);
                }
        } else {
                /* A typo in the table shows as itself, and the unit test catches it. */
                ft_strbuf_append(b, name - 1, len + 2);
        }
#undef IS
}

/* A sentence about the HTTP status alone, for bodies that carry no AWS error. */
static enum ft_retry explain_status(struct ft_strbuf *b, long status, const struct explain_args *a)
{
        ft_strbuf_puts(b, "STS at ");
        put_placeholder(b, "endpoint", 8, a);
        if (status == 429) {
                ft_strbuf_puts(b, " is throttling requests (HTTP 429) and sent no AWS error code: "
                               "retrying with backoff");
                return FT_RETRY_BACKOFF;
        }
        if (status >= 500 && status <= 599) {
                ft_strbuf_printf(b, " is unavailable or failing (HTTP %ld) and sent no AWS error code: "
                                 "retrying with backoff", status);
                return FT_RETRY_BACKOFF;
        }
        if (status >= 300 && status <= 399) {
                ft_strbuf_printf(b, " answered %s with a redirect (HTTP %ld), which is not followed: "
                                 "configure the endpoint URL it points to", a->operation, status);
                return FT_RETRY_SLOW;
        }
        if (status >= 400 && status <= 499) {
                ft_strbuf_printf(b, " refused %s with HTTP %ld and no AWS error code: check that the "
                                 "endpoint URL points at STS and that no proxy answers in its place",
                                 a->operation, status);
                return FT_RETRY_SLOW;
        }
        ft_strbuf_printf(b, " answered %s with HTTP %ld and no AWS error code",
                         a->operation, status);
        return FT_RETRY_SLOW;
}

static enum ft_retry explain_code(struct ft_strbuf *b, long status, const struct sts_error *err,
                                  const struct explain_args *a)
{
        const struct sts_explanation *e = explanation_of(a->operation, err->code);

        if (e) {
                ft_text_expand(b, e->text, put_placeholder, a);
                if (e->retry == RETRY_NOW_IF_TEMPORARY)
                        return a->ctx->creds_expiration > 0 ? FT_RETRY_NOW : FT_RETRY_SLOW;
                return (enum ft_retry)e->retry;
        }
        ft_strbuf_printf(b, "STS refused %s with error ", a->operation);
        put_value(b, err->code);
        ft_strbuf_printf(b, " (HTTP %ld)", status);
        /* An unknown server-side fault is worth retrying; an unknown client fault is not, soon. */
        if (status == 429 || status >= 500 || (err->type && strcmp(err->type, "Receiver") == 0))
                return FT_RETRY_BACKOFF;
        return FT_RETRY_SLOW;
}

void ft_sts_explain_error(long status, const char *body, size_t len, const struct ft_sts_context *ctx,
                          struct ft_diag *diag)
{
        static const struct ft_sts_context no_context = { 0 };
        static const char oom_msg[] = "cannot explain the STS error: out of memory";
        struct xml_field fields[ERR_N_FIELDS];
        struct sts_error err = { 0 };
        struct ft_strbuf b = { 0 };
        struct explain_args a = { .ctx = ctx ? ctx : &no_context };
        _cleanup_free_ char *derived_account = NULL;
        char shown[SHOW_MESSAGE_MAX + 4];
        enum ft_retry retry;
        bool have_code;

        if (!diag)
                return;
        ft_diag_clear(diag);
        a.operation = a.ctx->operation ? a.ctx->operation : "GetWebIdentityToken";
        a.account = a.ctx->account_id;
        if (!a.account && a.ctx->principal_arn)
                a.account = derived_account = arn_account(a.ctx->principal_arn);

        parse_error_doc(body, len, fields, &err);
        have_code = err.code && *err.code;
        if (have_code)
                retry = explain_code(&b, status, &err, &a);
        else
                retry = explain_status(&b, status, &a);
        /* AWS's message names principals and actions, never a secret: quote it, tamed. */
        if (err.message && *err.message)
                ft_strbuf_printf(&b, "; AWS says: \"%s\"",
                                 ft_text_show(shown, sizeof(shown), err.message, strlen(err.message),
                                              SHOW_MESSAGE_MAX));
        if (err.request_id && *err.request_id)
                ft_strbuf_printf(&b, " (request id %s)",
                                 ft_text_show(shown, sizeof(shown), err.request_id, strlen(err.request_id), 64));

        if (b.oom || !b.p)
                ft_diag_put(diag, oom_msg, sizeof(oom_msg) - 1);
        else
                ft_diag_put(diag, b.p, b.len);
        if (have_code)
                ft_text_show(diag->code, sizeof(diag->code), err.code, strlen(err.code), sizeof(diag->code) - 4);
        diag->retry = retry;
        diag->http_status = status;
        ft_strbuf_done(&b);
        xml_fields_free(fields, ERR_N_FIELDS);
}

/* ------------------------------------------------------------------------ */
/* Duration                                                                 */

int ft_sts_clamp_duration(int requested, int64_t creds_expiration, int64_t now, int margin)
{
        int effective = requested ? requested : FT_STS_DEFAULT_DURATION;
        int64_t left;

        if (margin < 0 || (requested != 0 && (requested < FT_STS_MIN_DURATION || requested > FT_STS_MAX_DURATION)))
                return -EINVAL;
        if (creds_expiration == 0)
                return requested;
        if (creds_expiration <= now)
                return -ERANGE;
        /* Only an absurd clock makes this overflow, and then plenty of time is left. */
        if (__builtin_sub_overflow(creds_expiration, now, &left))
                left = INT64_MAX;
        left -= margin;
        if (left < FT_STS_MIN_DURATION)
                return -ERANGE;
        if (left >= effective)
                return requested;
        return (int)left;
}
