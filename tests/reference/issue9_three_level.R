# Reference numbers for issue 9 (three-level models, diagonal tau, zero-mean random effects,
# level-1 categorical predictors), from R lme4 + lmerTest.
# Run from this folder: Rscript issue9_three_level.R
# Writes issue9_three_level.json here and the data sets ../data/chem97.csv.gz,
# ../data/egsingle.csv.gz, ../data/hsb_level1_cat.csv.gz. Every model is fitted to the data as
# read back from those CSV files, so Python reading the same files sees exactly the same numbers.
# See issue9_README.md for the model keys, the centering definitions and the columns.
suppressMessages({library(lme4); library(lmerTest); library(mlmRev); library(jsonlite)})

data_dir <- file.path("..", "data")
write_gz <- function(df, name) {
  path <- file.path(data_dir, name)
  con <- gzfile(path, "w")
  write.csv(df, con, row.names = FALSE, quote = FALSE)   # 15 significant digits
  close(con)
  read.csv(path, stringsAsFactors = FALSE)
}
# x minus its mean over the rows of its group (group-mean centering, "cwc")
cwc <- function(x, g) x - ave(x, g)
# mean over the rows of the group
cm <- function(x, g) ave(x, g)
# level-3 mean of a level-2 variable: each level-2 unit counted once, averaged within level 3
l3_mean_of_l2 <- function(x, g2, g3) {
  first <- !duplicated(g2)
  m <- tapply(x[first], g3[first], mean)
  unname(m[as.character(g3)])
}

checks <- list()

## ---------------------------------------------------------------- Chem97 (pupils / schools / LEAs)
ch <- mlmRev::Chem97
ch_out <- data.frame(
  lea = as.integer(as.character(ch$lea)),
  school = as.integer(as.character(ch$school)),
  student = as.integer(as.character(ch$student)),
  score = ch$score, gender = as.character(ch$gender), age = ch$age,
  gcsescore = ch$gcsescore, gcsecnt = ch$gcsecnt)
# school numbered 1, 2, ... within each LEA (ids repeat across LEAs): same nesting as `school`
ch_out$school_in_lea <- as.integer(ave(ch_out$school, ch_out$lea,
                                      FUN = function(s) match(s, unique(s))))
ch <- write_gz(ch_out, "chem97.csv.gz")
checks$chem97 <- list(
  n = nrow(ch), n_lea = length(unique(ch$lea)), n_school = length(unique(ch$school)),
  n_lea_school = nrow(unique(ch[, c("lea", "school")])),
  school_ids_repeat_across_lea = any(tapply(ch$lea, ch$school, function(x) length(unique(x))) > 1),
  school_in_lea_ids_repeat_across_lea = any(tapply(ch$lea, ch$school_in_lea, function(x) length(unique(x))) > 1),
  gcsecnt_is_gcsescore_minus_grand_mean = isTRUE(all.equal(ch$gcsecnt, ch$gcsescore - mean(ch$gcsescore))))
# derived columns (not exported; rebuild them in Python as documented)
ch$gcsecnt_cwc <- cwc(ch$gcsecnt, ch$school)              # pupil GCSE minus its school's mean
ch$school_mean_gcse <- cm(ch$gcsecnt, ch$school)          # school mean over pupils (rows)
ch$lea_mean_sm <- l3_mean_of_l2(ch$school_mean_gcse, ch$school, ch$lea)  # LEA mean of school means
ch$sm_cwc3 <- ch$school_mean_gcse - ch$lea_mean_sm        # school mean centred within LEA
ch$lea <- factor(ch$lea); ch$school <- factor(ch$school); ch$school_in_lea <- factor(ch$school_in_lea)

## ---------------------------------------------------------------- egsingle (years / children / schools)
eg <- mlmRev::egsingle
eg_out <- data.frame(
  schoolid = as.integer(as.character(eg$schoolid)),
  childid = as.integer(as.character(eg$childid)),
  year = eg$year, grade = eg$grade, math = eg$math,
  female = as.integer(eg$female == "Female"),
  black = as.integer(as.character(eg$black)),
  hispanic = as.integer(as.character(eg$hispanic)),
  lowinc = eg$lowinc, size = eg$size)
eg <- write_gz(eg_out, "egsingle.csv.gz")
checks$egsingle <- list(
  n = nrow(eg), n_school = length(unique(eg$schoolid)), n_child = length(unique(eg$childid)),
  child_ids_repeat_across_schools = any(tapply(eg$schoolid, eg$childid, function(x) length(unique(x))) > 1),
  black_constant_within_child = all(tapply(eg$black, eg$childid, function(x) length(unique(x))) == 1),
  lowinc_constant_within_school = all(tapply(eg$lowinc, eg$schoolid, function(x) length(unique(x))) == 1))
eg$childid <- factor(eg$childid); eg$schoolid <- factor(eg$schoolid)

## ---------------------------------------------------------------- HSB with level-1 categorical columns
h0 <- read.csv("/work/shared/data/hsb.csv")
tert <- quantile(h0$ses, c(0, 1/3, 2/3, 1))                # R type 7 = numpy's default "linear"
grp <- cut(h0$ses, tert, include.lowest = TRUE, labels = c("low", "mid", "high"))
h_out <- data.frame(school = h0$school, mathach = h0$mathach, ses = h0$ses,
                    minority = h0$minority, female = h0$female,
                    ses_group = as.character(grp), ses_tert = as.integer(grp))  # low=1, mid=2, high=3
h <- write_gz(h_out, "hsb_level1_cat.csv.gz")
checks$hsb <- list(n = nrow(h), n_school = length(unique(h$school)),
                   ses_tertile_cutpoints = unname(tert),
                   ses_group_counts = as.list(table(h$ses_group)))
h$cwc_ses <- cwc(h$ses, h$school)
# factor levels in sorted (Python) order, so R's treatment reference is the first sorted level
h$ses_group <- factor(h$ses_group, levels = sort(unique(h$ses_group)))   # high, low, mid
h$ses_tert <- factor(h$ses_tert, levels = c(1, 2, 3))
h$school <- factor(h$school)
checks$hsb$ses_group_levels <- levels(h$ses_group)

## ---------------------------------------------------------------- models
# levels: grouping factor as lme4 names it -> data column holding that level's unit ids
L_chem <- c("school:lea" = "school", "lea:school" = "school", lea = "lea")
cases <- list(
  chem97_null = list(d = "chem97", f = score ~ 1 + (1 | lea/school), reml = TRUE),
  chem97_null_ml = list(d = "chem97", f = score ~ 1 + (1 | lea/school), reml = FALSE),
  chem97_null_school_in_lea = list(d = "chem97", f = score ~ 1 + (1 | lea/school_in_lea), reml = TRUE),
  chem97_cwc_slope = list(d = "chem97", reml = TRUE,
    f = score ~ gcsecnt_cwc + school_mean_gcse + (1 + gcsecnt_cwc | lea:school) + (1 | lea)),
  chem97_cwc_slope_ml = list(d = "chem97", reml = FALSE,
    f = score ~ gcsecnt_cwc + school_mean_gcse + (1 + gcsecnt_cwc | lea:school) + (1 | lea)),
  chem97_cwc_slope_l3 = list(d = "chem97", reml = TRUE,
    f = score ~ gcsecnt_cwc + sm_cwc3 + lea_mean_sm + (1 + gcsecnt_cwc | lea:school) + (1 | lea)),
  eg_growth = list(d = "egsingle", reml = TRUE,
    f = math ~ year + (1 + year | childid) + (1 + year | schoolid)),
  eg_growth_ml = list(d = "egsingle", reml = FALSE,
    f = math ~ year + (1 + year | childid) + (1 + year | schoolid)),
  eg_growth_pred = list(d = "egsingle", reml = TRUE,
    f = math ~ year + black + lowinc + year:black + year:lowinc + (1 + year | childid) + (1 + year | schoolid)),
  eg_growth_pred_ml = list(d = "egsingle", reml = FALSE,
    f = math ~ year + black + lowinc + year:black + year:lowinc + (1 + year | childid) + (1 + year | schoolid)),
  eg_growth_diag_child = list(d = "egsingle", reml = TRUE,
    f = math ~ year + (1 + year || childid) + (1 + year | schoolid)),
  hsb_diag = list(d = "hsb", reml = TRUE, f = mathach ~ cwc_ses + (1 + cwc_ses || school)),
  hsb_diag_ml = list(d = "hsb", reml = FALSE, f = mathach ~ cwc_ses + (1 + cwc_ses || school)),
  hsb_zero_mean_diag = list(d = "hsb", reml = TRUE,
    f = mathach ~ 1 + (1 | school) + (0 + cwc_ses | school)),
  hsb_zero_mean_slope = list(d = "hsb", reml = TRUE, f = mathach ~ 1 + (1 + cwc_ses | school)),
  hsb_cat = list(d = "hsb", reml = TRUE, f = mathach ~ ses_group + (1 | school)),
  hsb_cat_ml = list(d = "hsb", reml = FALSE, f = mathach ~ ses_group + (1 | school)),
  hsb_cat_slope = list(d = "hsb", reml = TRUE,
    f = mathach ~ ses_group + minority + (1 + minority | school)),
  hsb_cat_int = list(d = "hsb", reml = TRUE, f = mathach ~ ses_tert + (1 | school)),
  hsb_cat_random = list(d = "hsb", reml = TRUE, f = mathach ~ ses_group + (1 + ses_group | school))
)
levels_of <- list(chem97 = L_chem,
                  egsingle = c(childid = "childid", schoolid = "schoolid"),
                  hsb = c(school = "school"))
cases$chem97_null_school_in_lea$levels <- c("school_in_lea:lea" = "school_in_lea", lea = "lea")
datasets <- list(chem97 = ch, egsingle = eg, hsb = h)
files <- list(chem97 = "chem97.csv.gz", egsingle = "egsingle.csv.gz", hsb = "hsb_level1_cat.csv.gz")

fit_once <- function(f, d, reml, control) {
  w <- character(0)
  m <- withCallingHandlers(suppressMessages(lme4::lmer(f, d, REML = reml, control = control)),
    warning = function(e) { w <<- c(w, conditionMessage(e)); invokeRestart("muffleWarning") })
  list(m = m, warnings = w)
}
named_matrix <- function(M) {
  setNames(lapply(rownames(M), function(r) as.list(setNames(M[r, ], colnames(M)))), rownames(M))
}

out <- list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        lmerTest = as.character(packageVersion("lmerTest")),
                        Matrix = as.character(packageVersion("Matrix")),
                        timing = "elapsed seconds of lme4::lmer, median of 5 runs after 1 warm-up"),
            data_checks = checks, models = list())

for (key in names(cases)) {
  cc <- cases[[key]]; d <- datasets[[cc$d]]
  control <- lmerControl()
  r <- fit_once(cc$f, d, cc$reml, control)
  first_warnings <- r$warnings; optimizer_note <- "default"
  conv <- r$m@optinfo$conv$lme4
  # refit with bobyqa on any warning or convergence message other than the singular-fit note
  # (a boundary fit is an answer, not a failure)
  failed <- c(r$warnings, setdiff(unlist(conv$messages), "boundary (singular) fit: see help('isSingular')"))
  if (length(failed) > 0) {
    control <- lmerControl(optimizer = "bobyqa"); optimizer_note <- "bobyqa (default failed)"
    r <- fit_once(cc$f, d, cc$reml, control)
  }
  m <- r$m
  # cross-check: the same model under the other optimizer (how sharp is the optimum?)
  alt_opt <- if (m@optinfo$optimizer == "bobyqa") "nloptwrap" else "bobyqa"
  m_alt <- suppressMessages(suppressWarnings(
    lme4::lmer(cc$f, d, REML = cc$reml, control = lmerControl(optimizer = alt_opt))))
  dev_alt <- if (cc$reml) REMLcrit(m_alt) else deviance(m_alt)
  tm <- numeric(0)
  for (k in 0:5) { t <- system.time(suppressMessages(lme4::lmer(cc$f, d, REML = cc$reml, control = control)))[["elapsed"]]
                   if (k > 0) tm <- c(tm, t) }
  # Satterthwaite df from lmerTest's own fit of the same model (same optimum as lme4's)
  t_df <- system.time(mt <- suppressMessages(suppressWarnings(
    lmerTest::lmer(cc$f, d, REML = cc$reml, control = control))))[["elapsed"]]
  stopifnot(max(abs(fixef(mt) - fixef(m))) < 1e-8)
  co <- summary(mt, ddf = "Satterthwaite")$coefficients
  # random effects: one covariance matrix per grouping factor (terms of one factor, e.g. from ||,
  # merged block-diagonally, zeros between terms)
  cn <- m@cnms; vc <- VarCorr(m)
  tau <- list()
  for (g in unique(names(cn))) {
    idx <- which(names(cn) == g)
    nm <- unlist(cn[idx], use.names = FALSE)
    M <- matrix(0, length(nm), length(nm), dimnames = list(nm, nm))
    for (i in idx) { v <- vc[[i]]; M[rownames(v), colnames(v)] <- as.matrix(v) }
    sds <- sqrt(diag(M))
    tau[[g]] <- list(names = I(nm), cov = unname(M), cov_named = named_matrix(M),
                     sd = as.list(sds), diagonal = length(idx) > 1 || length(nm) == 1,
                     lme4_terms = I(names(vc)[idx]))
  }
  ng <- ngrps(m)
  lv <- if (!is.null(cc$levels)) cc$levels else levels_of[[cc$d]]
  lv <- as.list(lv[names(lv) %in% names(ng)])
  dev <- if (cc$reml) REMLcrit(m) else deviance(m)
  out$models[[key]] <- list(
    data = files[[cc$d]],
    formula = paste(deparse(cc$f, width.cutoff = 500L), collapse = " "),
    reml = cc$reml,
    levels = lv,
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    df = as.list(setNames(co[, "df"], rownames(co))),
    t = as.list(setNames(co[, "t value"], rownames(co))),
    p = as.list(setNames(co[, "Pr(>|t|)"], rownames(co))),
    tau = tau,
    sigma2 = sigma(m)^2,
    deviance = dev,
    deviance_type = if (cc$reml) "REML criterion (REMLcrit)" else "-2 logLik (ML)",
    logLik = as.numeric(logLik(m)),
    nobs = nobs(m),
    ngroups = as.list(ng),
    singular = isSingular(m),
    theta = as.list(getME(m, "theta")),
    optimizer = m@optinfo$optimizer,
    optimizer_choice = optimizer_note,
    optimizer_message = as.character(m@optinfo$message),
    conv_code = if (is.null(m@optinfo$conv$lme4$code)) 0L else m@optinfo$conv$lme4$code,
    conv_messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
    warnings = I(r$warnings),
    default_optimizer_warnings = I(first_warnings),
    deviance_other_optimizer = list(optimizer = alt_opt, deviance = dev_alt,
      max_abs_fixef_diff = max(abs(fixef(m_alt) - fixef(m)))),
    lme4_seconds = median(tm),
    lme4_seconds_runs = tm)
  cat(sprintf("%-26s dev %.6f (%s %+.1e) sing %s  %.3fs (lmerTest %.1fs)  %s %s\n", key, dev, alt_opt, dev_alt - dev, isSingular(m), median(tm), t_df,
              m@optinfo$optimizer, paste(c(first_warnings, out$models[[key]]$conv_messages), collapse = "; ")))
}
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
      "issue9_three_level.json")
cat("written\n")
