# Times lme4 on the eight HSB reference models on this machine, for bench_hsb.py.
# Usage: Rscript lme4_times.R path/to/hsb.csv N   -> one line "name seconds deviance" per model
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); n <- as.integer(args[2])
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses; d$cgm_ses <- d$ses - mean(d$ses)
d$school <- factor(d$school)
cases <- list(
 null = list(f = mathach ~ 1 + (1|school), reml=TRUE),
 means_as_outcomes = list(f = mathach ~ meanses + (1|school), reml=TRUE),
 random_coefficient = list(f = mathach ~ cwc_ses + (cwc_ses|school), reml=TRUE),
 isao = list(f = mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses|school), reml=TRUE),
 isao_ml = list(f = mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses|school), reml=FALSE),
 rancova_cgm = list(f = mathach ~ cgm_ses + (1|school), reml=TRUE),
 within_between = list(f = mathach ~ cwc_ses + cm_ses + (1|school), reml=TRUE),
 contextual = list(f = mathach ~ cgm_ses + cm_ses + (1|school), reml=TRUE)
)
invisible(lmer(cases$null$f, d))  # warm-up: first call loads compiled code
for (name in names(cases)) {
  cc <- cases[[name]]; tm <- numeric(n)
  for (k in seq_len(n)) {
    t0 <- proc.time()[["elapsed"]]
    m <- lmer(cc$f, d, REML = cc$reml)
    tm[k] <- proc.time()[["elapsed"]] - t0
  }
  cat(name, median(tm), -2 * as.numeric(logLik(m)), "\n")
}
