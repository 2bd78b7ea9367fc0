# Times lme4 (and lmerTest with its Satterthwaite summary) on the three-level reference models,
# one fit at a time on request, for bench_three_level.py (which alternates these fits with
# mlmwrap's in the same run).
# Usage: Rscript three_level_lme4.R tests/reference/issue9_three_level.json tests/data
# Reads model keys from stdin, one a line ("quit" ends); for each it fits the model once with
# lme4::lmer and once with lmerTest::lmer + summary(ddf = "Satterthwaite") and prints
#   key lme4_seconds lmerTest_seconds deviance
# Derived columns are made once, up front, as reference/issue9_three_level.R makes them (not timed).
suppressMessages({library(lme4); library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
models <- fromJSON(args[1])$models
data_dir <- args[2]
cwc <- function(x, g) x - ave(x, g)
cm <- function(x, g) ave(x, g)
l3_mean_of_l2 <- function(x, g2, g3) {
  first <- !duplicated(g2)
  m <- tapply(x[first], g3[first], mean)
  unname(m[as.character(g3)])
}
ch <- read.csv(file.path(data_dir, "chem97.csv.gz"), stringsAsFactors = FALSE)
ch$gcsecnt_cwc <- cwc(ch$gcsecnt, ch$school)
ch$school_mean_gcse <- cm(ch$gcsecnt, ch$school)
ch$lea_mean_sm <- l3_mean_of_l2(ch$school_mean_gcse, ch$school, ch$lea)
ch$sm_cwc3 <- ch$school_mean_gcse - ch$lea_mean_sm
ch$lea <- factor(ch$lea); ch$school <- factor(ch$school); ch$school_in_lea <- factor(ch$school_in_lea)
eg <- read.csv(file.path(data_dir, "egsingle.csv.gz"), stringsAsFactors = FALSE)
eg$childid <- factor(eg$childid); eg$schoolid <- factor(eg$schoolid)
datasets <- list(chem97.csv.gz = ch, egsingle.csv.gz = eg)
# warm-up: the first call loads compiled code
invisible(suppressMessages(lmerTest::lmer(math ~ year + (1 | childid) + (1 | schoolid), eg)))
con <- file("stdin", "r")
repeat {
  key <- readLines(con, n = 1)
  if (length(key) == 0 || key == "quit") break
  m <- models[[key]]
  d <- datasets[[m$data]]
  f <- as.formula(m$formula)
  control <- lmerControl(optimizer = m$optimizer)   # the optimizer the reference fit used
  t1 <- system.time(fit <- suppressMessages(suppressWarnings(
    lme4::lmer(f, d, REML = m$reml, control = control))))[["elapsed"]]
  t2 <- system.time({
    mt <- suppressMessages(suppressWarnings(lmerTest::lmer(f, d, REML = m$reml, control = control)))
    co <- summary(mt, ddf = "Satterthwaite")$coefficients
  })[["elapsed"]]
  dev <- if (m$reml) REMLcrit(fit) else deviance(fit)
  cat(key, t1, t2, sprintf("%.10f", dev), "\n")
  flush(stdout())
}
