# Reference numbers for comparing three-level models (issue 9: compare / build-up with ML
# refits), from R lme4's anova(). Run from this folder: Rscript issue9_compare.R
# Reads ../data/egsingle.csv.gz and ../data/chem97.csv.gz (written by issue9_three_level.R)
# and writes issue9_compare.json. anova() refits REML fits by ML unless refit = FALSE; its
# p-values are the naive chi-square ones (no boundary mixture).
suppressMessages({library(lme4); library(jsonlite)})
eg <- read.csv(file.path("..", "data", "egsingle.csv.gz"))
eg$childid <- factor(eg$childid); eg$schoolid <- factor(eg$schoolid)
ch <- read.csv(file.path("..", "data", "chem97.csv.gz"))
ch$gcsecnt_cwc <- ch$gcsecnt - ave(ch$gcsecnt, ch$school)
ch$lea <- factor(ch$lea); ch$school <- factor(ch$school)

row <- function(a, k) list(deviance = a$deviance[k], npar = a$npar[k], Chisq = a$Chisq[k],
                           Df = a$Df[k], p = a[["Pr(>Chisq)"]][k], AIC = a$AIC[k], BIC = a$BIC[k])
out <- list()
# fixed parts differ: REML fits refit by ML
g1 <- lmer(math ~ year + (1 + year | childid) + (1 + year | schoolid), eg, REML = TRUE)
g2 <- lmer(math ~ year + black + lowinc + year:black + year:lowinc +
             (1 + year | childid) + (1 + year | schoolid), eg, REML = TRUE)
a <- anova(g1, g2)
out$eg_growth_vs_pred <- list(small = row(a, 1), large = row(a, 2))
# same fixed part, a covariance fixed at 0 at level 2: REML criteria compared
g0 <- lmer(math ~ year + (1 + year || childid) + (1 + year | schoolid), eg, REML = TRUE)
a <- anova(g0, g1, refit = FALSE)
out$eg_diag_child_vs_growth <- list(small = row(a, 1), large = row(a, 2))
# a random slope added at level 2 (REML, same fixed part)
c1 <- lmer(score ~ gcsecnt_cwc + (1 | lea:school) + (1 | lea), ch, REML = TRUE)
c2 <- lmer(score ~ gcsecnt_cwc + (1 + gcsecnt_cwc | lea:school) + (1 | lea), ch, REML = TRUE)
a <- anova(c1, c2, refit = FALSE)
out$chem_ri_vs_slope <- list(small = row(a, 1), large = row(a, 2))
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "issue9_compare.json")
