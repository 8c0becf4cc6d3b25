/** The daemon's worker exits with this to have the launcher start it again on the new commit (EX_TEMPFAIL). */
export const restart_exit_code = 75;
