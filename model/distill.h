/* distill.h — the knowledge-distillation loss of a student's logits against a teacher's
 * (docs/DISTILL.md): loss = (1 - alpha) CE + alpha T^2 KL(softmax(teacher/T) || softmax(student/T)),
 * both terms averaged over the N token positions, and its gradient with respect to the
 * student's logits. */
#ifndef LMDISP_DISTILL_H
#define LMDISP_DISTILL_H

#include <stddef.h>

typedef struct {
    double ce; /* mean over rows of -log softmax(student)[target] */
    double
        kl; /* mean over rows of sum_v p_t (log p_t - log q_s), p_t = softmax(t/T), q_s = softmax(s/T) */
    double loss; /* (1 - alpha) ce + alpha T^2 kl */
} lmd_distill_losses;

/* s, t: (N, V) student and teacher logits; targets (N). When dlogits is non-NULL writes
 * d loss / d s (N, V) = (1 - alpha)/N (softmax(s) - onehot) + alpha T/N (q_s - p_t).
 * Rows are computed in double, each independently (any thread count gives the same bits);
 * the row means are summed in row order. */
lmd_distill_losses lmd_distill_forward_backward(const float *s, const float *t, const int *targets,
                                                size_t N, int V, double alpha, double T,
                                                float *dlogits);

#endif
