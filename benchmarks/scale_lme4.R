# Times lme4 on one synthetic data set for scale.py.
# Usage: Rscript scale_lme4.R data.csv "formula" -> one line "seconds deviance"
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); d$g <- factor(d$g)
f <- as.formula(args[2])
t0 <- proc.time()[["elapsed"]]
m <- lmer(f, d, REML = TRUE)
cat(sprintf("%.3f %.6f\n", proc.time()[["elapsed"]] - t0, -2 * as.numeric(logLik(m))))
