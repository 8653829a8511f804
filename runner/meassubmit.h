/* meassubmit.h — `lmdisp submit`, `resubmit` and `status` of measurement studies
 * (runner/meassubmit.c, docs/SLURM.md "Measurement studies"). Each returns the exit code. */
#ifndef LMDISP_MEASSUBMIT_H
#define LMDISP_MEASSUBMIT_H

int lmd_mstudy_submit(const char *spec_path, const char *out, const char *templates, int throttle,
                      int cells_per_task, int dry);
int lmd_mstudy_resubmit(const char *dir, const char *templates, int throttle, int cells_per_task,
                        int dry, int force, int want_failed, int want_missing);
int lmd_mstudy_status(const char *dir, int json);

#endif
