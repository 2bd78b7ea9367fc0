# Nakagawa & Schielzeth R² of three-level models (issue 9), from performance::r2_nakagawa
# and insight::get_variance. Run from this folder: Rscript issue9_r2.R
# Reads ../data/chem97.csv.gz and ../data/egsingle.csv.gz (written by issue9_three_level.R);
# writes issue9_r2.json.
suppressMessages({library(lme4); library(performance); library(insight); library(jsonlite)})
ch <- read.csv(file.path("..", "data", "chem97.csv.gz"))
ch$gcsecnt_cwc <- ch$gcsecnt - ave(ch$gcsecnt, ch$school)
ch$school_mean_gcse <- ave(ch$gcsecnt, ch$school)
ch$lea <- factor(ch$lea); ch$school <- factor(ch$school)
eg <- read.csv(file.path("..", "data", "egsingle.csv.gz"))
eg$childid <- factor(eg$childid); eg$schoolid <- factor(eg$schoolid)

models <- list(
  chem97_cwc_slope = lmer(score ~ gcsecnt_cwc + school_mean_gcse +
                            (1 + gcsecnt_cwc | lea:school) + (1 | lea), ch, REML = TRUE),
  eg_growth_pred = lmer(math ~ year + black + lowinc + year:black + year:lowinc +
                          (1 + year | childid) + (1 + year | schoolid), eg, REML = TRUE),
  eg_intercepts = lmer(math ~ year + (1 | childid) + (1 | schoolid), eg, REML = FALSE)
)
out <- lapply(models, function(m) {
  r <- r2_nakagawa(m)
  v <- get_variance(m)
  list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional),
       var_fixed = v$var.fixed, var_random = v$var.random, var_residual = v$var.residual,
       deviance = unname(if (isREML(m)) REMLcrit(m) else deviance(m)))
})
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     performance = as.character(packageVersion("performance")),
                     insight = as.character(packageVersion("insight")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "issue9_r2.json")
