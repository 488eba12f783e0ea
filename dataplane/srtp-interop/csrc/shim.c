/* A narrow C shim over libsrtp2 for Switchyard's interoperability tests.
 * One function per operation, plain ints and byte pointers only. */
#include <srtp2/srtp.h>
#include <string.h>

/* Profiles, numbered as the DTLS-SRTP ids (RFC 5764, RFC 7714). */
enum { SY_CM_80 = 1, SY_CM_32 = 2, SY_GCM_128 = 7, SY_GCM_256 = 8 };

int sy_init(void) { return srtp_init() == srtp_err_status_ok ? 0 : -1; }

/* Creates a session for any inbound (inbound != 0) or outbound SSRC.
 * key_salt is the master key followed by the master salt. */
void *sy_create(int profile, const unsigned char *key_salt, int inbound, unsigned long window) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    switch (profile) {
    case SY_CM_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
        break;
    case SY_CM_32:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
        break;
    case SY_GCM_128:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
        break;
    case SY_GCM_256:
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp);
        break;
    default:
        return NULL;
    }
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.key = (unsigned char *)key_salt;
    policy.window_size = window;
    policy.allow_repeat_tx = 1;
    srtp_t session = NULL;
    if (srtp_create(&session, &policy) != srtp_err_status_ok) return NULL;
    return session;
}

void sy_destroy(void *session) { srtp_dealloc((srtp_t)session); }

/* Each returns libsrtp's status (0 = ok) and updates *len. The buffer must
 * have SRTP_MAX_TRAILER_LEN spare bytes after *len for protect. */
int sy_protect(void *s, unsigned char *buf, int *len) { return srtp_protect((srtp_t)s, buf, len); }
int sy_unprotect(void *s, unsigned char *buf, int *len) { return srtp_unprotect((srtp_t)s, buf, len); }
int sy_protect_rtcp(void *s, unsigned char *buf, int *len) { return srtp_protect_rtcp((srtp_t)s, buf, len); }
int sy_unprotect_rtcp(void *s, unsigned char *buf, int *len) { return srtp_unprotect_rtcp((srtp_t)s, buf, len); }
int sy_max_trailer(void) { return SRTP_MAX_TRAILER_LEN; }
