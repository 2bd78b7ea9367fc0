# Reference numbers for issue 9 item 7: categorical predictors at level 1 (b1*C(x)), fixed and
# random, with cross-level interactions, two and three levels; from R lme4 + lmerTest (Satterthwaite
# df), pbkrtest (Kenward-Roger), clubSandwich (CR2) and performance (Nakagawa R2).
# Run from this folder: Rscript issue9_level1_categorical.R   (about 60 s)
# Writes issue9_level1_categorical.json here and ../data/exam.csv.gz (mlmRev's Exam). Reads
# ../data/hsb_level1_cat.csv.gz and ../data/chem97.csv.gz (written by issue9_three_level.R).
# Every model is fitted to the data as read back from those CSV files.
#
# Categories: every factor is built from the CSV's text or integer column with its levels in
# sorted order, so R's treatment reference is the first sorted level, as in mlmwrap:
#   hsb ses_group: high (reference), low, mid      -> g10[low], g10[mid]
#   hsb minority (0/1 integer): 0 (reference), 1    -> g10[1], u1[1]
#   Exam intake: "bottom 25%" (reference), "mid 50%", "top 25%"
#   Chem97 gender: F (reference), M                 -> g100[M]
# Derived columns (rebuilt in Python by the equations): cm_ses = cmean(ses) = mean of ses over
# the rows of the school; cwc_ses = ses - cm_ses; gcsecnt_cwc = gcsecnt minus its school mean.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(clubSandwich)
  library(performance); library(mlmRev); library(jsonlite)})

data_dir <- file.path("..", "data")
cwc <- function(x, g) x - ave(x, g)

## ---------------------------------------------------------------- data
h <- read.csv(file.path(data_dir, "hsb_level1_cat.csv.gz"), stringsAsFactors = FALSE)
h$cm_ses <- ave(h$ses, h$school)
h$cwc_ses <- h$ses - h$cm_ses
h$ses_group <- factor(h$ses_group, levels = sort(unique(h$ses_group)))     # high, low, mid
h$minority <- factor(h$minority, levels = c(0, 1))
h$school <- factor(h$school)

ex_out <- data.frame(school = as.integer(as.character(mlmRev::Exam$school)),
                     normexam = mlmRev::Exam$normexam, standLRT = mlmRev::Exam$standLRT,
                     schavg = mlmRev::Exam$schavg, intake = as.character(mlmRev::Exam$intake),
                     sex = as.character(mlmRev::Exam$sex))
path <- file.path(data_dir, "exam.csv.gz")
con <- gzfile(path, "w"); write.csv(ex_out, con, row.names = FALSE); close(con)
ex <- read.csv(path, stringsAsFactors = FALSE)
ex$intake <- factor(ex$intake, levels = sort(unique(ex$intake)))   # bottom 25%, mid 50%, top 25%
ex$school <- factor(ex$school)

ch <- read.csv(file.path(data_dir, "chem97.csv.gz"), stringsAsFactors = FALSE)
ch$gcsecnt_cwc <- cwc(ch$gcsecnt, ch$school)
ch$gender <- factor(ch$gender, levels = sort(unique(ch$gender)))   # F, M
ch$lea <- factor(ch$lea); ch$school <- factor(ch$school)

checks <- list(
  hsb_ses_group_levels = levels(h$ses_group), hsb_minority_levels = levels(h$minority),
  exam = list(n = nrow(ex), n_school = nlevels(ex$school), intake_levels = levels(ex$intake),
              intake_varies_within_schools = sum(tapply(ex$intake, ex$school,
                                                       function(x) length(unique(x))) > 1)),
  chem97_gender_levels = levels(ch$gender))

## ---------------------------------------------------------------- models
# eq: the mlmwrap equations these lme4 formulas are (run by tests/test_level1_categorical.py)
cases <- list(
  hsb_cat_cross = list(d = "hsb", reml = TRUE,
    f = mathach ~ ses_group * cm_ses + (1 | school),
    eq = "mathach = b0 + b1*C(ses_group) + e | b0 = g00 + g01*cmean(ses) + u0 | b1 = g10 + g11*cmean(ses)"),
  hsb_min_random = list(d = "hsb", reml = TRUE, kr = TRUE, cr2 = TRUE, extras = TRUE,
    f = mathach ~ minority * cm_ses + cwc_ses + (1 + minority | school),
    eq = "mathach = b0 + b1*C(minority) + b2*cwc(ses) + e | b0 = g00 + g01*cmean(ses) + u0 | b1 = g10 + g11*cmean(ses) + u1 | b2 = g20"),
  hsb_min_random_ml = list(d = "hsb", reml = FALSE,
    f = mathach ~ minority * cm_ses + cwc_ses + (1 + minority | school),
    eq = "as hsb_min_random, reml=False"),
  hsb_min_fixed_ml = list(d = "hsb", reml = FALSE,
    f = mathach ~ minority * cm_ses + cwc_ses + (1 | school),
    eq = "as hsb_min_random without u1, reml=False"),
  hsb_cat_diag = list(d = "hsb", reml = TRUE,
    f = mathach ~ ses_group + (1 | school) + (0 + dummy(ses_group) | school),
    eq = "mathach = b0 + b1*C(ses_group) + e | b0 = g00 + u0 | b1 = g10 + u1 | cov(u0, u1) = 0"),
  exam_intake = list(d = "exam", reml = TRUE, kr = TRUE,
    f = normexam ~ intake * schavg + standLRT + (1 + standLRT | school),
    eq = "normexam = b0 + b1*C(intake) + b2*standLRT + e | b0 = g00 + g01*schavg + u0 | b1 = g10 + g11*schavg | b2 = g20 + u2"),
  chem97_gender = list(d = "chem97", reml = TRUE,
    f = score ~ gender + gcsecnt_cwc + (1 + gender | lea:school) + (1 | lea),
    eq = "score = p0 + p1*C(gender) + p2*cwc(gcsecnt) + e | p0 = b00 + r0 | p1 = b10 + r1 | p2 = b20 | b00 = g000 + u00 | b10 = g100 | b20 = g200"),
  chem97_gender_l3 = list(d = "chem97", reml = TRUE,
    f = score ~ gender + (1 | lea:school) + (1 + gender | lea),
    eq = "score = p0 + p1*C(gender) + e | p0 = b00 + r0 | p1 = b10 | b00 = g000 + u00 | b10 = g100 + u10")
)
datasets <- list(hsb = h, exam = ex, chem97 = ch)
files <- list(hsb = "hsb_level1_cat.csv.gz", exam = "exam.csv.gz", chem97 = "chem97.csv.gz")
levels_of <- list(hsb = c(school = "school"), exam = c(school = "school"),
                  chem97 = c("lea:school" = "school", lea = "lea"))

named_matrix <- function(M) {
  setNames(lapply(rownames(M), function(r) as.list(setNames(M[r, ], colnames(M)))), rownames(M))
}
out <- list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        lmerTest = as.character(packageVersion("lmerTest")),
                        pbkrtest = as.character(packageVersion("pbkrtest")),
                        clubSandwich = as.character(packageVersion("clubSandwich")),
                        performance = as.character(packageVersion("performance")),
                        Matrix = as.character(packageVersion("Matrix"))),
            data_checks = checks, models = list())

for (key in names(cases)) {
  cc <- cases[[key]]; d <- datasets[[cc$d]]
  w <- character(0)
  t0 <- Sys.time()
  m <- withCallingHandlers(suppressMessages(lmerTest::lmer(cc$f, d, REML = cc$reml)),
    warning = function(e) { w <<- c(w, conditionMessage(e)); invokeRestart("muffleWarning") })
  secs <- as.numeric(Sys.time() - t0, units = "secs")
  m_alt <- suppressMessages(suppressWarnings(
    lme4::lmer(cc$f, d, REML = cc$reml, control = lmerControl(optimizer = "bobyqa"))))
  dev_alt <- if (cc$reml) REMLcrit(m_alt) else deviance(m_alt)
  co <- summary(m, ddf = "Satterthwaite")$coefficients
  cn <- m@cnms; vc <- VarCorr(m)
  tau <- list()
  for (g in unique(names(cn))) {
    idx <- which(names(cn) == g)
    nm <- unlist(cn[idx], use.names = FALSE)
    M <- matrix(0, length(nm), length(nm), dimnames = list(nm, nm))
    for (i in idx) { v <- vc[[i]]; M[rownames(v), colnames(v)] <- as.matrix(v) }
    tau[[g]] <- list(names = I(nm), cov = unname(M), cov_named = named_matrix(M))
  }
  dev <- if (cc$reml) REMLcrit(m) else deviance(m)
  rec <- list(
    data = files[[cc$d]], formula = paste(deparse(cc$f, width.cutoff = 500L), collapse = " "),
    equations = cc$eq, reml = cc$reml, levels = as.list(levels_of[[cc$d]]),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    df = as.list(setNames(co[, "df"], rownames(co))),
    t = as.list(setNames(co[, "t value"], rownames(co))),
    p = as.list(setNames(co[, "Pr(>|t|)"], rownames(co))),
    tau = tau, sigma2 = sigma(m)^2, deviance = dev,
    deviance_type = if (cc$reml) "REML criterion (REMLcrit)" else "-2 logLik (ML)",
    logLik = as.numeric(logLik(m)), nobs = nobs(m), ngroups = as.list(ngrps(m)),
    singular = isSingular(m), theta = as.list(getME(m, "theta")),
    warnings = I(w), conv_messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
    deviance_bobyqa = dev_alt, max_abs_fixef_diff_bobyqa = max(abs(fixef(m_alt) - fixef(m))),
    lme4_seconds = secs)
  if (isTRUE(cc$kr)) {
    ck <- summary(m, ddf = "Kenward-Roger")$coefficients
    rec$kenward_roger <- list(se = as.list(setNames(ck[, "Std. Error"], rownames(ck))),
                              df = as.list(setNames(ck[, "df"], rownames(ck))))
  }
  if (isTRUE(cc$cr2)) {
    m4 <- suppressMessages(lme4::lmer(cc$f, d, REML = cc$reml))
    cr <- coef_test(m4, vcov = "CR2", test = "Satterthwaite")
    rec$cr2 <- list(se = as.list(setNames(cr$SE, names(fixef(m4)))),
                    df = as.list(setNames(cr$df_Satt, names(fixef(m4)))))
  }
  if (isTRUE(cc$extras)) {
    # empirical Bayes effects, coef(), predictions (in-sample and on new rows) and R2
    m4 <- suppressMessages(lme4::lmer(cc$f, d, REML = cc$reml))
    re <- ranef(m4, condVar = TRUE)$school
    pv <- attr(re, "postVar")
    first <- 1:5
    rec$ranef <- list(school = rownames(re)[first],
                      effects = lapply(colnames(re), function(n) re[first, n]),
                      names = I(colnames(re)),
                      postvar_first_school = pv[, , 1])
    cf <- coef(m4)$school
    rec$coef <- list(school = rownames(cf)[first], names = I(colnames(cf)),
                     values = lapply(colnames(cf), function(n) cf[first, n]))
    rec$fitted_first <- unname(fitted(m4)[1:5])
    rows <- c(1, 2, which(d$minority == "1")[1:3])
    nd <- d[rows, c("school", "minority", "ses", "cm_ses", "cwc_ses")]
    rec$newdata <- list(row = rows, school = as.integer(as.character(nd$school)),
                        minority = as.integer(as.character(nd$minority)), ses = nd$ses)
    rec$predict_newdata <- unname(predict(m4, newdata = nd))
    rec$predict_newdata_fixed <- unname(predict(m4, newdata = nd, re.form = NA))
    r2 <- performance::r2_nakagawa(m4)
    rec$r2_nakagawa <- list(marginal = unname(r2$R2_marginal),
                            conditional = unname(r2$R2_conditional))
  }
  out$models[[key]] <- rec
  cat(sprintf("%-20s dev %.6f (bobyqa %+.1e) singular %s  %.1fs %s\n", key, dev, dev_alt - dev,
              isSingular(m), secs, paste(c(w, rec$conv_messages), collapse = "; ")))
}
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
      "issue9_level1_categorical.json")
cat("written\n")
