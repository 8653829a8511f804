/* commands.h — the lmdisp subcommands; each returns the process exit code
 * (0 ok, 1 runtime failure, 2 bad usage or input). */
#ifndef LMDISP_COMMANDS_H
#define LMDISP_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_aggregate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_resubmit(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
