# Times lme4 on one synthetic data set for scale.py.
# Usage: Rscript scale_lme4.R data.csv "formula" -> one line "elapsed cpu deviance"
# (seconds of lmer alone: elapsed, and user + system CPU time)
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); d$g <- factor(d$g)
f <- as.formula(args[2])
t0 <- proc.time()
m <- lmer(f, d, REML = TRUE)
t1 <- proc.time() - t0
cpu <- t1[["user.self"]] + t1[["sys.self"]]
cat(sprintf("%.3f %.3f %.6f\n", t1[["elapsed"]], cpu, -2 * as.numeric(logLik(m))))
